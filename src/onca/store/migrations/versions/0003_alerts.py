"""Alerts, their unique values and processed matches; delivery outbox, delivery attempts and destinations.

Revision ID: 0003_alerts
Revises: 0002_sources_settings_packs
Create Date: 2026-05-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alerts"
down_revision = "0002_sources_settings_packs"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dedup", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("runbook", sa.Text(), nullable=False),
        sa.Column("alert_context", sa.Text(), nullable=True),
        sa.Column("destinations", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("reports", sa.Text(), nullable=False),
        sa.Column("first_event_time", TIMESTAMP, nullable=False),
        sa.Column("last_event_time", TIMESTAMP, nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("unique_count", sa.Integer(), nullable=False),
        sa.Column("log_types", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(320), nullable=True),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("raised", sa.Boolean(), nullable=False),
        sa.Column("raised_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("dedup_key", "window_start", name="uq_alerts_dedup_key_window_start"),
        sa.CheckConstraint("kind IN ('RULE', 'RULE_ERROR')", name="ck_alerts_kind"),
        sa.CheckConstraint("status IN ('OPEN', 'TRIAGED', 'CLOSED', 'RESOLVED')", name="ck_alerts_status"),
        sa.CheckConstraint("severity IN ('INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL')", name="ck_alerts_severity"),
    )
    op.create_index("ix_alerts_rule_id", "alerts", ["rule_id"])
    op.create_index("ix_alerts_status", "alerts", ["status"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_table(
        "alert_uniques",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "value", name="pk_alert_uniques"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_uniques_alert_id_alerts",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "processed_matches",
        sa.Column("rule_id", sa.String(255), nullable=False),
        sa.Column("row_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "row_id", name="pk_processed_matches"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_processed_matches_alert_id_alerts",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_processed_matches_alert_id", "processed_matches", ["alert_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_deliveries_alert_id_alerts", ondelete="CASCADE"),
        sa.CheckConstraint("outcome IN ('success', 'retry', 'failed')", name="ck_deliveries_outcome"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_alert_id", "deliveries", ["alert_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_outbox_alert_id_alerts", ondelete="CASCADE"),
        sa.UniqueConstraint("alert_id", "destination", name="uq_outbox_alert_id_destination"),
        sa.CheckConstraint("state IN ('pending', 'sending', 'done', 'failed')", name="ck_outbox_state"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("config_encrypted", sa.Text(), nullable=False),
        sa.Column("severities", sa.Text(), nullable=False),
        sa.Column("log_types", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_destinations"),
        sa.UniqueConstraint("name", name="uq_destinations_name"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("destinations")
    op.drop_index("ix_outbox_state_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_deliveries_alert_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_processed_matches_alert_id", table_name="processed_matches")
    op.drop_table("processed_matches")
    op.drop_table("alert_uniques")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_index("ix_alerts_status", table_name="alerts")
    op.drop_index("ix_alerts_rule_id", table_name="alerts")
    op.drop_table("alerts")
