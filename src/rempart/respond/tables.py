"""SQLAlchemy tables of the response layer (on :class:`rempart.db.Base`).

Portable types only (SQLite by default, PostgreSQL through the same models). Times are epoch
seconds as floats: exact comparisons, no timezone ambiguity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Table

from rempart.db import Base


class DecisionRow(Base):
    __tablename__ = "respond_decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    rate_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(256))
    alert_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_respond_decisions_scope_value", "scope", "value"),
        Index("ix_respond_decisions_state_expires", "state", "expires"),
    )


class AuditRow(Base):
    """Append-only: one row per decision and analyst action, chained by SHA-256."""

    __tablename__ = "respond_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ApiTokenRow(Base):
    __tablename__ = "respond_api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    #: SHA-256 (hex) of the whole token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS respond_audit_no_update BEFORE UPDATE ON respond_audit "
    "BEGIN SELECT RAISE(ABORT, 'respond_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS respond_audit_no_delete BEFORE DELETE ON respond_audit "
    "BEGIN SELECT RAISE(ABORT, 'respond_audit is append-only'); END",
)


_POSTGRESQL_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION respond_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'respond_audit is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER respond_audit_no_change BEFORE UPDATE OR DELETE ON respond_audit "
    "FOR EACH ROW EXECUTE FUNCTION respond_audit_append_only()",
)


@event.listens_for(AuditRow.__table__, "after_create")
def _append_only_triggers(target: Table, connection: Connection, **_: Any) -> None:
    """On SQLite and PostgreSQL, refuse UPDATE and DELETE of audit rows in the database itself.

    The hash chain detects tampering done around the triggers (or on other databases).
    """
    statements = {"sqlite": _SQLITE_APPEND_ONLY, "postgresql": _POSTGRESQL_APPEND_ONLY}
    for ddl in statements.get(connection.dialect.name, ()):
        connection.exec_driver_sql(ddl)
