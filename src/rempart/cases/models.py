"""SQLAlchemy tables of cases (on :class:`rempart.db.Base`): incidents, their alerts, the
hash-chained audit trail, and the re-identification vault.

Portable types only (SQLite by default, PostgreSQL through the same models). Times are epoch
seconds (floats). No raw NIR is ever stored: the vault holds ciphertexts sealed for the DPO.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Table

from rempart.db import Base

STATUSES = ("new", "triage", "contained", "notified", "closed")


class IncidentRow(Base):
    __tablename__ = "cases_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="new")
    severity: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    #: Event time of the first / last alerted event.
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    accounts: Mapped[list[str]] = mapped_column(JSON, default=list)
    ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Grouping keys (``account:PH0042``, ``net:203.0.113.0/24``).
    keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Time the controller became aware (Art. 33(1) clock); default: first detection.
    aware_at: Mapped[float] = mapped_column(Float)
    contained_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: "actor" or "account" (see CasesSettings.attribution).
    attribution: Mapped[str] = mapped_column(String(16), default="actor")
    #: Analyst overrides of the compromise window: account -> {start, end, reason, actor}.
    window_override: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Free fields of the breach documents set by analysts (measures, late reason...).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_cases_incidents_status", "status"),)


class IncidentAlertRow(Base):
    __tablename__ = "cases_incident_alerts"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("cases_incidents.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(128))
    first_seen: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseAuditRow(Base):
    """Append-only and hash-chained: ``hash = sha256(prev_hash | canonical JSON of the row)``."""

    __tablename__ = "cases_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Unique: two writers racing on the same tail cannot both append (one retries).
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class VaultSessionRow(Base):
    """One sealing session: an ephemeral X25519 public key; its private half is never stored."""

    __tablename__ = "cases_vault_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float)
    #: SHA-256 (hex, 16 chars) of the DPO public key the session was sealed for.
    dpo_key_id: Mapped[str] = mapped_column(String(32))
    ephemeral_public: Mapped[bytes] = mapped_column(LargeBinary(32))


class VaultEntryRow(Base):
    """Per token, the identifier sealed (AES-256-GCM) under its session's key."""

    __tablename__ = "cases_vault"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("cases_vault_sessions.id"))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary(64))


_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS cases_audit_no_update BEFORE UPDATE ON cases_audit "
    "BEGIN SELECT RAISE(ABORT, 'cases_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS cases_audit_no_delete BEFORE DELETE ON cases_audit "
    "BEGIN SELECT RAISE(ABORT, 'cases_audit is append-only'); END",
)


@event.listens_for(CaseAuditRow.__table__, "after_create")
def _append_only_triggers(target: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "sqlite":
        for statement in _SQLITE_APPEND_ONLY:
            connection.exec_driver_sql(statement)


__all__ = [
    "STATUSES",
    "CaseAuditRow",
    "IncidentAlertRow",
    "IncidentRow",
    "VaultEntryRow",
    "VaultSessionRow",
]
