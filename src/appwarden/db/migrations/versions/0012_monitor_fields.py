"""monitor fields: per-field distinct people per hour, and first sightings of credentials and networks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 18:40:00

A vendor's ``full_sync`` declaration needs no schema change: it is one more key of the version's
``volume`` JSON (absent means false).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Never import appwarden here: a migration must mean the same forever, so copy the logic it needs into
# this file, frozen as of this revision (tests/test_migrations_frozen.py checks).

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_hours", schema=None) as batch_op:
        batch_op.add_column(sa.Column("field_people", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("field_bitmaps", sa.JSON(), nullable=False, server_default="{}"))

    op.create_table(
        "monitor_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("people", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_monitor_sources_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_monitor_sources_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_sources")),
        sa.UniqueConstraint("app_id", "company_id", "kind", "key", name="uq_monitor_sources_key"),
    )
    with op.batch_alter_table("monitor_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_sources_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_sources_first_seen_at"), ["first_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitor_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_sources_first_seen_at"))
        batch_op.drop_index(batch_op.f("ix_monitor_sources_app_id"))

    op.drop_table("monitor_sources")
    with op.batch_alter_table("monitor_hours", schema=None) as batch_op:
        batch_op.drop_column("field_bitmaps")
        batch_op.drop_column("field_people")
