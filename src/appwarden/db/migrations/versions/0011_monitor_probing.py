"""monitor probing: late calls (after revocation, after a kill) and restricted-token people per hour

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Never import appwarden here: a migration must mean the same forever, so copy the logic it needs into
# this file, frozen as of this revision (tests/test_migrations_frozen.py checks).

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_hours", schema=None) as batch_op:
        batch_op.add_column(sa.Column("after_revocation", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("after_kill", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("restricted_people", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitor_hours", schema=None) as batch_op:
        batch_op.drop_column("restricted_people")
        batch_op.drop_column("after_kill")
        batch_op.drop_column("after_revocation")
