"""restricted tokens; restricted-token id and purpose on ledger entries

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restricted_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("parent_token_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_ids", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_restricted_tokens_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_restricted_tokens_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_restricted_tokens_connection_id_connections")
        ),
        sa.ForeignKeyConstraint(
            ["parent_token_id"], ["tokens.id"], name=op.f("fk_restricted_tokens_parent_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restricted_tokens")),
        sa.UniqueConstraint("public_id", name=op.f("uq_restricted_tokens_public_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_restricted_tokens_token_hash")),
    )
    with op.batch_alter_table("restricted_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_restricted_tokens_app_id"), ["app_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_restricted_tokens_parent_token_id"), ["parent_token_id"], unique=False
        )
        batch_op.create_index(
            "ix_restricted_tokens_connection_id_issued_at", ["connection_id", "issued_at"], unique=False
        )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted_token", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("purpose", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("purpose")
        batch_op.drop_column("restricted_token")
    with op.batch_alter_table("restricted_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_restricted_tokens_connection_id_issued_at")
        batch_op.drop_index(batch_op.f("ix_restricted_tokens_parent_token_id"))
        batch_op.drop_index(batch_op.f("ix_restricted_tokens_app_id"))
    op.drop_table("restricted_tokens")
