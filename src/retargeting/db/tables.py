"""The schema. Times are Unix seconds (float): compared numerically on both engines, no tz trouble.

Table names follow the spec (`platform_settings`, `organizations`, `widget_pageviews`, `call_logs`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# Primary keys that grow fast are BIGINT on PostgreSQL and the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

platform_settings = Table(
    "platform_settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON; secrets inside are Fernet-encrypted
    Column("updated_at", Double, nullable=False),
)

# One row; every settings change increments it in the same transaction, and every process
# polls it to know when its in-memory snapshot is stale.
settings_revision = Table(
    "settings_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(300), nullable=False),
    # The name case-folded in Python, so search ignores case for every script, whatever the
    # database's locale (SQLite's lower() only knows ASCII).
    Column("name_folded", String(300), nullable=False, server_default=""),
    Column("status", String(50), nullable=False, server_default="active"),
    Column("greetnow_retargeting_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("pageview_count", BigInteger, nullable=False, server_default="0"),
    Column("call_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_organizations_name", "name"),
    Index("ix_organizations_pageview_count", "pageview_count"),
    Index("ix_organizations_call_count", "call_count"),
)

widget_pageviews = Table(
    "widget_pageviews",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(100), nullable=False),
    Column("visitor_hash", String(64), nullable=False),
    Column("page_url", Text, nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("occurred_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    # No index on organization_id: nothing reads rows by organization (the counters on
    # `organizations` are what the admin sees), and each entry cost an insert a dirtied page.
)

call_logs = Table(
    "call_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(100), nullable=False),
    Column("call_id", String(200), nullable=False),
    Column("visitor_hash", String(64), nullable=False),
    Column("page_url", Text, nullable=False),
    Column("occurred_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
)

# The outbox: one row per CAPI event. `payload` holds the serialised event (with IP and user
# agent) until delivery, then is dropped. A claim pushes `next_attempt_at` to the lease's end, so
# a worker killed mid-send simply lets its rows fall due again.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(100), nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("event_time", BigInteger, nullable=False),
    Column("payload", Text, nullable=True),
    Column("status", String(20), nullable=False),  # pending, delivered, failed, expired
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
    Column("claimed_by", String(100), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_code", Integer, nullable=True),
    Column("fbtrace_id", String(100), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("last_attempt_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    # Pending rows only, in the order they fall due: what a claim reads. A delivered row leaves
    # it; queries say `status = 'pending'` literally so that they can use it (`db/outbox.py`).
    Index(
        "ix_outbox_events_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    # Finished rows only, for the purge: a pending row (every enqueue) adds no entry here.
    Index(
        "ix_outbox_events_finished_at",
        "finished_at",
        postgresql_where=text("finished_at IS NOT NULL"),
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
    # Only rows that carry an error: the delivery report's "last errors" stays an index read.
    Index(
        "ix_outbox_events_errors",
        "last_attempt_at",
        postgresql_where=text("last_error IS NOT NULL"),
        sqlite_where=text("last_error IS NOT NULL"),
    ),
)

# Running totals per event name, updated in the same transaction as each outcome, so the
# delivery report reads five rows instead of counting millions of outbox rows.
delivery_counters = Table(
    "delivery_counters",
    metadata,
    Column("event_name", String(100), primary_key=True),
    Column("delivered", BigInteger, nullable=False, server_default="0"),
    Column("failed", BigInteger, nullable=False, server_default="0"),
    Column("expired", BigInteger, nullable=False, server_default="0"),
    Column("last_delivered_at", Double, nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("is_superadmin", Boolean, nullable=False, server_default=text("false")),
    # Every browser session carries the epoch it was issued in; signing out moves it on, so a
    # copied cookie dies with the sign-out instead of living out its 12 hours.
    Column("session_epoch", Integer, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    Column("last_used_at", Double, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(300), nullable=False),
    Column("old_value", Text, nullable=True),  # JSON, secrets masked
    Column("new_value", Text, nullable=True),
    Index("ix_audit_log_at", "at"),
)

# Failed sign-ins per (email, address) and per address, for growing delays; shared by every
# web process because it lives in the database.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", Double, nullable=False),
)
