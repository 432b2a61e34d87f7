"""The tables, as SQLAlchemy Core metadata.

The numbered SQL files in ``migrations/<dialect>/`` create these same tables;
``tests/migrations`` proves that a migrated database equals ``metadata.create_all``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
    true,
)

from .types import LongBlob, LongText, UTCDateTime

metadata = MetaData()

# SQLite: AUTOINCREMENT keeps ids increasing even after the newest row is deleted.
BigId = BigInteger().with_variant(Integer(), "sqlite")

task_table = Table(
    "tasktable_task",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("handler", String(255), nullable=False),
    Column("args", LongText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("messages", LongText, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("executed_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("action_link", Text(), nullable=True),
    Column("queue", String(100), nullable=False),
    Column("priority", Integer(), nullable=False),
    Column("run_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("timeout", Float(), nullable=True),
    Column("progress_done", BigInteger(), nullable=True),
    Column("progress_total", BigInteger(), nullable=True),
    Column("error", LongText, nullable=True),
    Column("worker", String(64), nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
    Column("unique_key", String(255), nullable=True),
    # unique_key while the task is pending or running, NULL otherwise: a plain
    # unique index on it is "no second live task with the same key" on every dialect.
    Column("active_key", String(255), nullable=True),
    Column("cancel_requested", Boolean(), nullable=False, server_default=false()),
    Column("lost_count", Integer(), nullable=False, server_default=text("0")),
    # migration 0003: False when the handler must not run again after a lost worker
    Column("rerun_on_loss", Boolean(), nullable=False, server_default=true()),
    Index("ix_tasktable_task_status_finished", "status", "finished_at"),
    Index("ix_tasktable_task_status_heartbeat", "status", "heartbeat_at"),
    Index("ix_tasktable_task_created", "created_at"),
    Index("ux_tasktable_task_active_key", "active_key", unique=True),
    sqlite_autoincrement=True,
)
# The claim's index, as the migrations create it: each queue's due rows in claim order
# (priority high to low, then id), which the claims read in index order.
Index(
    "ix_tasktable_task_claim",
    task_table.c.status,
    task_table.c.queue,
    task_table.c.priority.desc(),
    task_table.c.id,
)
# Migration 0005: the pending rows of every queue in claim order, for a claim with no
# queue (or several): read in order, it stops after its rows instead of sorting them all.
# Partial where the database has partial indexes (MariaDB: every row). The condition is
# set when the table is created (``_partial_pending``), not given here as
# ``postgresql_where``/``sqlite_where``: those would import both dialect packages with
# this module (see types.py).
pending_index = Index(
    "ix_tasktable_task_pending",
    task_table.c.status,
    task_table.c.priority.desc(),
    task_table.c.id,
)


@event.listens_for(task_table, "before_create")
def _partial_pending(target: Table, connection: Connection, **kw: Any) -> None:
    name = connection.dialect.name
    if name in ("postgresql", "sqlite"):
        pending_index.dialect_options[name]["where"] = task_table.c.status == "pending"


file_table = Table(
    "tasktable_file",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger(), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("content", LongBlob, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("task_id", "filename", name="ux_tasktable_file_task_filename"),
    sqlite_autoincrement=True,
)

worker_table = Table(
    "tasktable_worker",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("slots", Integer(), nullable=False),
    Column("queues", String(1000), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Index("ix_tasktable_worker_heartbeat", "heartbeat_at"),
)

# migration 0003: the last tick enqueued of each periodic task (one enqueue per tick).
periodic_table = Table(
    "tasktable_periodic",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("last_tick", UTCDateTime(), nullable=False),
)

schema_table = Table(
    "tasktable_schema",
    metadata,
    Column("version", Integer(), primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)

# -- identity (migration 0002): users and API tokens of the REST API and dashboard --
user_table = Table(
    "tasktable_user",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(150), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),  # argon2id, encoded
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime(), nullable=True),
    UniqueConstraint("name", name="ux_tasktable_user_name"),
    sqlite_autoincrement=True,
)

token_table = Table(
    "tasktable_token",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False),  # SHA-256 hex of the secret
    Column("prefix", String(16), nullable=False),  # the secret's first characters, to recognise it
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    UniqueConstraint("name", name="ux_tasktable_token_name"),
    UniqueConstraint("token_hash", name="ux_tasktable_token_hash"),
    sqlite_autoincrement=True,
)

login_failure_table = Table(
    "tasktable_login_failure",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject", String(255), nullable=False),  # "user:<name>" or "client:<address>"
    Column("failed_at", UTCDateTime(), nullable=False),
    Index("ix_tasktable_login_failure_subject", "subject", "failed_at"),
    sqlite_autoincrement=True,
)

# -- dashboard sessions (migration 0004): only the SHA-256 of each cookie secret --
session_table = Table(
    "tasktable_session",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigInteger(), nullable=False),
    Column("credential", String(64), nullable=False),  # digest of the password hash at login
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_tasktable_session_user", "user_id"),
    Index("ix_tasktable_session_expires", "expires_at"),
)
