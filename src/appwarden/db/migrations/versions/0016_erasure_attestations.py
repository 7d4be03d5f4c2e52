"""obligations: vendors' attestations of erasure requests (one per request, immutable)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 11:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Never import appwarden here: a migration must mean the same forever, so copy the logic it needs into
# this file, frozen as of this revision (tests/test_migrations_frozen.py checks).

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_attestations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attested_by", sa.String(length=200), nullable=False),
        sa.Column("attested_role", sa.String(length=200), nullable=False),
        sa.Column("statement", sa.Text(), nullable=True),
        sa.Column("attested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_erasure_attestations_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_erasure_attestations_request_id_erasure_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_erasure_attestations_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_attestations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_erasure_attestations_public_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_erasure_attestations_request_id")),
    )
    with op.batch_alter_table("erasure_attestations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasure_attestations_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("erasure_attestations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_attestations_app_id"))
    op.drop_table("erasure_attestations")
