"""Append-only, hash-chained audit trail of every change to incidents (who, when, what).

Each entry's hash covers the previous entry's hash and the entry's own canonical JSON, so any
edit, deletion or reordering breaks :func:`verify_chain`. On SQLite, triggers also refuse
UPDATE and DELETE on the table; ``prev_hash`` is unique, so two writers racing on the same tail
cannot both append (the loser retries on the new tail).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.cases.models import CaseAuditRow
from rempart.errors import StoreError

GENESIS = "0" * 64


def _canonical(
    seq: int, incident_id: int | None, at: float, actor: str, action: str, details: dict[str, Any]
) -> bytes:
    return json.dumps(
        {
            "seq": seq,
            "incident": incident_id,
            "at": round(at, 6),
            "actor": actor,
            "action": action,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode()


def entry_hash(
    prev_hash: str,
    seq: int,
    incident_id: int | None,
    at: float,
    actor: str,
    action: str,
    details: dict[str, Any],
) -> str:
    h = hashlib.sha256(prev_hash.encode())
    h.update(b"|")
    h.update(_canonical(seq, incident_id, at, actor, action, details))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    incident_id: int | None
    at: float
    actor: str
    action: str
    details: dict[str, Any]
    hash: str

    def to_dict(self) -> dict[str, Any]:
        from rempart.cases.window import iso

        return {
            "seq": self.seq,
            "incident": self.incident_id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "details": self.details,
            "hash": self.hash,
        }


def append(
    session: Session,
    incident_id: int | None,
    actor: str,
    action: str,
    details: dict[str, Any],
    *,
    at: float | None = None,
) -> AuditEntry:
    """Append one entry within ``session`` (the caller commits with its own changes)."""
    at = time.time() if at is None else at
    details = json.loads(json.dumps(details, default=str))
    tail = session.execute(
        select(CaseAuditRow.seq, CaseAuditRow.hash).order_by(CaseAuditRow.seq.desc()).limit(1)
    ).first()
    seq, prev = (tail[0] + 1, tail[1]) if tail else (1, GENESIS)
    digest = entry_hash(prev, seq, incident_id, at, actor, action, details)
    row = CaseAuditRow(
        seq=seq,
        incident_id=incident_id,
        at=at,
        actor=actor,
        action=action,
        details=details,
        prev_hash=prev,
        hash=digest,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise StoreError(
            "audit trail moved while writing (concurrent change): retry", where="cases_audit"
        ) from None
    return AuditEntry(seq, incident_id, at, actor, action, details, digest)


def entries(session: Session, incident_id: int | None = None) -> list[AuditEntry]:
    stmt = select(CaseAuditRow).order_by(CaseAuditRow.seq)
    if incident_id is not None:
        stmt = stmt.where(CaseAuditRow.incident_id == incident_id)
    return [
        AuditEntry(r.seq, r.incident_id, r.at, r.actor, r.action, dict(r.details), r.hash)
        for r in session.scalars(stmt)
    ]


def verify_chain(session: Session) -> tuple[bool, str]:
    """Recompute every hash; ``(False, reason)`` on the first broken link."""
    prev = GENESIS
    expected_seq = 1
    for r in session.scalars(select(CaseAuditRow).order_by(CaseAuditRow.seq)):
        if r.seq != expected_seq:
            return False, f"entry {expected_seq} is missing (next is {r.seq})"
        if r.prev_hash != prev:
            return False, f"entry {r.seq} does not follow entry {r.seq - 1}"
        digest = entry_hash(prev, r.seq, r.incident_id, r.at, r.actor, r.action, r.details)
        if digest != r.hash:
            return False, f"entry {r.seq} was altered"
        prev = r.hash
        expected_seq += 1
    return True, f"{expected_seq - 1} entries, chain intact"
