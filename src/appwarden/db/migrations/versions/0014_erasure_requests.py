"""obligations: each app's erasure webhook endpoint (sealed secret) and the erasure-request outbox

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:10:16.836815
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Never import appwarden here: a migration must mean the same forever, so copy the logic it needs into
# this file, frozen as of this revision (tests/test_migrations_frozen.py checks).

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_erasure_requests_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_erasure_requests_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_erasure_requests_idempotency_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_erasure_requests_public_id")),
    )
    with op.batch_alter_table("erasure_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasure_requests_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_erasure_requests_company_id"), ["company_id"], unique=False)
        batch_op.create_index(
            "ix_erasure_requests_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "vendor_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("sealed_secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_vendor_endpoints_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_endpoints")),
        sa.UniqueConstraint("app_id", name=op.f("uq_vendor_endpoints_app_id")),
    )


def downgrade() -> None:
    op.drop_table("vendor_endpoints")
    with op.batch_alter_table("erasure_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_erasure_requests_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_erasure_requests_company_id"))
        batch_op.drop_index(batch_op.f("ix_erasure_requests_app_id"))

    op.drop_table("erasure_requests")
