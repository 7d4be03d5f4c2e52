"""obligations: the outcome of the review's check of each app's erasure endpoint

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Never import appwarden here: a migration must mean the same forever.

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vendor_endpoints") as batch:
        batch.add_column(sa.Column("check_passed", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("check_reason", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vendor_endpoints") as batch:
        batch.drop_column("checked_at")
        batch.drop_column("check_reason")
        batch.drop_column("check_passed")
