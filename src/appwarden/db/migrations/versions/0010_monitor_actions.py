"""monitor actions: throttles and the outbox of actions and deliveries owed on alerts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Never import appwarden here: a migration must mean the same forever, so copy the logic it needs into
# this file, frozen as of this revision (tests/test_migrations_frozen.py checks).

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=200), nullable=True),
        sa.Column("lift_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_monitor_throttles_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_monitor_throttles_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_monitor_throttles_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_throttles")),
        sa.UniqueConstraint("public_id", name=op.f("uq_monitor_throttles_public_id")),
    )
    with op.batch_alter_table("monitor_throttles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_throttles_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_throttles_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_throttles_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "monitor_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_monitor_outbox_alert_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_outbox")),
        sa.UniqueConstraint("alert_id", "channel", name="uq_monitor_outbox_key"),
    )
    with op.batch_alter_table("monitor_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_outbox_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_outbox_done_at"), ["done_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_outbox_not_before"), ["not_before"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitor_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_outbox_not_before"))
        batch_op.drop_index(batch_op.f("ix_monitor_outbox_done_at"))
        batch_op.drop_index(batch_op.f("ix_monitor_outbox_alert_id"))
    op.drop_table("monitor_outbox")
    with op.batch_alter_table("monitor_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_throttles_expires_at"))
        batch_op.drop_index(batch_op.f("ix_monitor_throttles_app_id"))
        batch_op.drop_index(batch_op.f("ix_monitor_throttles_alert_id"))
    op.drop_table("monitor_throttles")
