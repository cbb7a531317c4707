"""Alert triage in the console: who last changed an alert, and indexes for filtered, keyset-paginated lists.

Revision ID: 0005_alert_triage
Revises: 0004_web_auth
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_alert_triage"
down_revision = "0004_web_auth"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_alerts_created_at_id": ["created_at", "id"],
    "ix_alerts_status_created_at_id": ["status", "created_at", "id"],
    "ix_alerts_severity_created_at_id": ["severity", "created_at", "id"],
    "ix_alerts_rule_id_created_at_id": ["rule_id", "created_at", "id"],
    "ix_alerts_assignee_created_at_id": ["assignee", "created_at", "id"],
    "ix_alerts_status_severity_raised": ["status", "severity", "raised"],
}


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("updated_by", sa.String(320), nullable=True))
    for name, columns in INDEXES.items():
        op.create_index(name, "alerts", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("updated_by")
