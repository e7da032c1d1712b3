"""Append-only audit trail of every decision and analyst action, with a SHA-256 hash chain.

Each record's hash covers its own content and the previous record's hash, so changing,
removing or reordering any past record breaks every later link: :meth:`AuditTrail.verify`
names the first broken record.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.errors import StoreError
from rempart.respond.decisions import Clock
from rempart.respond.tables import AuditRow

GENESIS = "0" * 64


def record_hash(
    prev_hash: str, seq: int, at: float, actor: str, action: str, subject: str | None, details: Any
) -> str:
    body = json.dumps(
        [prev_hash, seq, repr(float(at)), actor, action, subject, details],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(slots=True, frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "hash": self.hash,
        }


@dataclass(slots=True, frozen=True)
class ChainReport:
    records: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None


class AuditTrail:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock):
        self._sessions = sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[int, str] | None = None

    def _tail(self, session: Session) -> tuple[int, str]:
        # Read in the writing transaction every time: the CLI and the server may both append.
        # Two writers reading the same tail collide on the primary key; the loser retries.
        row = session.execute(
            select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
        ).first()
        self._last = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        return self._last

    def append_in(
        self,
        session: Session,
        actor: str,
        action: str,
        subject: str | None,
        details: dict[str, Any],
    ) -> AuditEntry:
        """Append within the caller's transaction (commit is the caller's)."""
        with self._lock:
            seq, prev = self._tail(session)
            seq += 1
            at = self._clock()
            details = json.loads(json.dumps(details, default=str))
            digest = record_hash(prev, seq, at, actor, action, subject, details)
            session.add(
                AuditRow(
                    seq=seq,
                    at=at,
                    actor=actor,
                    action=action,
                    subject=subject,
                    details=details,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            self._last = (seq, digest)
            return AuditEntry(seq, at, actor, action, subject, details, digest)

    def forget_tail(self) -> None:
        """Re-read the chain's tail from the database (after a rolled-back transaction)."""
        with self._lock:
            self._last = None

    def append(
        self, actor: str, action: str, subject: str | None, details: dict[str, Any]
    ) -> AuditEntry:
        for attempt in range(5):
            try:
                with self._sessions.begin() as session:
                    return self.append_in(session, actor, action, subject, details)
            except IntegrityError:
                if attempt == 4:
                    break
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot write audit record: {exc.__class__.__name__}") from None
        raise StoreError("cannot write audit record: concurrent writers kept colliding")

    def entries(self, *, subject: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        with self._sessions() as session:
            stmt = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
            if subject is not None:
                stmt = stmt.where(AuditRow.subject == subject)
            rows = session.scalars(stmt).all()
        return [
            AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, dict(r.details), r.hash)
            for r in reversed(rows)
        ]

    def verify(self) -> ChainReport:
        """Walk the whole chain; report the first record whose link or content is wrong."""
        prev = GENESIS
        expected_seq = 1
        count = 0
        with self._sessions() as session:
            for row in session.scalars(select(AuditRow).order_by(AuditRow.seq)):
                count += 1
                if row.seq != expected_seq:
                    return ChainReport(count, False, row.seq, f"record {expected_seq} is missing")
                if row.prev_hash != prev:
                    return ChainReport(count, False, row.seq, "link to previous record broken")
                digest = record_hash(
                    prev, row.seq, row.at, row.actor, row.action, row.subject, row.details
                )
                if digest != row.hash:
                    return ChainReport(count, False, row.seq, "record content was altered")
                prev = row.hash
                expected_seq += 1
        return ChainReport(count, True)
