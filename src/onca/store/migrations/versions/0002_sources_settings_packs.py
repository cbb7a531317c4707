"""Log sources, settings and installed content packs.

Revision ID: 0002_sources_settings_packs
Revises: 0001_identity_audit
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sources_settings_packs"
down_revision = "0001_identity_audit"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("log_types", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("name", name="uq_sources_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "content_packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.Column("installed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_content_packs"),
        sa.UniqueConstraint("name", name="uq_content_packs_name"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("content_packs")
    op.drop_table("settings")
    op.drop_table("sources")
