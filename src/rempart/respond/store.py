"""Durable decisions (SQLAlchemy) with an in-memory index kept in step, and the audit trail.

Every write goes to the database and the audit trail in one transaction, then to the index; a
failed write leaves the index untouched. On start, the index is rebuilt from the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.errors import InputError, NotFoundError, StoreError
from rempart.respond.audit import AuditTrail
from rempart.respond.decisions import (
    Clock,
    Decision,
    DecisionIndex,
    DecisionState,
    DecisionType,
    Rate,
    Scope,
)
from rempart.respond.tables import DecisionRow


def _to_row(d: Decision) -> DecisionRow:
    return DecisionRow(
        id=d.id,
        scope=d.scope.value,
        value=d.value,
        type=d.type.value,
        state=d.state.value,
        rate_per_second=d.rate.per_second if d.rate else None,
        burst=d.rate.burst if d.rate else None,
        created=d.created,
        expires=d.expires,
        reason=d.reason,
        origin=d.origin,
        alert_id=d.alert_id,
        level=d.level,
        revoked_by=d.revoked_by,
        revoked_at=d.revoked_at,
    )


def _from_row(r: DecisionRow) -> Decision:
    rate = Rate(r.rate_per_second, r.burst or 1) if r.rate_per_second else None
    return Decision(
        id=r.id,
        scope=Scope(r.scope),
        value=r.value,
        type=DecisionType(r.type),
        created=r.created,
        expires=r.expires,
        reason=r.reason,
        origin=r.origin,
        alert_id=r.alert_id,
        state=DecisionState(r.state),
        rate=rate,
        revoked_by=r.revoked_by,
        revoked_at=r.revoked_at,
        level=r.level,
    )


class DecisionStore:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock):
        self._sessions = sessions
        self.clock = clock
        self.audit = AuditTrail(sessions, clock)
        self.index = DecisionIndex()
        self._lock = threading.Lock()
        self.reload()

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild the index from the active, unexpired decisions in the database."""
        now = self.clock()
        try:
            with self._sessions() as session:
                rows = session.scalars(
                    select(DecisionRow).where(
                        DecisionRow.state == DecisionState.ACTIVE.value,
                        DecisionRow.expires > now,
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read decisions: {exc.__class__.__name__}") from None
        with self._lock:
            self.index.replace_all(_from_row(r) for r in rows)

    def get(self, decision_id: str) -> Decision:
        with self._sessions() as session:
            row = session.get(DecisionRow, decision_id)
        if row is None:
            raise NotFoundError(f"no decision {decision_id!r}")
        return _from_row(row)

    def query(
        self,
        *,
        state: DecisionState | None = None,
        scope: Scope | None = None,
        value: str | None = None,
        live_only: bool = False,
        limit: int = 500,
    ) -> list[Decision]:
        stmt = select(DecisionRow).order_by(DecisionRow.created.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(DecisionRow.state == state.value)
        if scope is not None:
            stmt = stmt.where(DecisionRow.scope == scope.value)
        if value is not None:
            stmt = stmt.where(DecisionRow.value == value)
        if live_only:
            stmt = stmt.where(
                DecisionRow.state == DecisionState.ACTIVE.value,
                DecisionRow.expires > self.clock(),
            )
        with self._sessions() as session:
            return [_from_row(r) for r in session.scalars(stmt).all()]

    def decided_for_alert(self, alert_id: str) -> set[tuple[Scope, str]]:
        """(scope, value) of every decision already made for this alert, in any state."""
        with self._sessions() as session:
            rows = session.execute(
                select(DecisionRow.scope, DecisionRow.value).where(DecisionRow.alert_id == alert_id)
            ).all()
        return {(Scope(r[0]), str(r[1])) for r in rows}

    def count_automatic_blocks_since(self, since: float, scope: Scope = Scope.ACCOUNT) -> int:
        """Automatic blocks enforced (active or since revoked) created at or after ``since``."""
        with self._sessions() as session:
            n = session.scalar(
                select(func.count())
                .select_from(DecisionRow)
                .where(
                    DecisionRow.scope == scope.value,
                    DecisionRow.type == DecisionType.BLOCK.value,
                    DecisionRow.origin.like("rule:%"),
                    DecisionRow.state.in_(
                        [DecisionState.ACTIVE.value, DecisionState.REVOKED.value]
                    ),
                    DecisionRow.created >= since,
                )
            )
        return int(n or 0)

    def offences_since(self, scope: Scope, value: str, since: float) -> int:
        """Earlier automatic enforcing decisions on (scope, value): the escalation level."""
        with self._sessions() as session:
            n = session.scalar(
                select(func.count())
                .select_from(DecisionRow)
                .where(
                    DecisionRow.scope == scope.value,
                    DecisionRow.value == value,
                    DecisionRow.origin.like("rule:%"),
                    DecisionRow.type != DecisionType.NOTIFY.value,
                    DecisionRow.state.in_(
                        [
                            DecisionState.ACTIVE.value,
                            DecisionState.REVOKED.value,
                            DecisionState.SIMULATED.value,
                        ]
                    ),
                    DecisionRow.created >= since,
                )
            )
        return int(n or 0)

    # -- writing ---------------------------------------------------------------------------
    def _write(
        self,
        decisions: Iterable[Decision],
        actor: str,
        action: str,
        extra: dict[str, Any] | None = None,
        *,
        update: bool = False,
    ) -> None:
        decisions = list(decisions)
        with self._lock:
            for attempt in range(5):
                try:
                    with self._sessions.begin() as session:
                        for d in decisions:
                            if update:
                                session.merge(_to_row(d))
                            else:
                                session.add(_to_row(d))
                            details = d.to_dict() | (extra or {})
                            self.audit.append_in(session, actor, action, d.id, details)
                    break
                except IntegrityError:
                    # another process appended to the audit chain at the same time: retry
                    if attempt == 4:
                        raise StoreError("cannot write decision: audit chain contention") from None
                except SQLAlchemyError as exc:
                    raise StoreError(f"cannot write decision: {exc.__class__.__name__}") from None
            for d in decisions:
                if d.state is DecisionState.ACTIVE:
                    self.index.add(d)
                else:
                    self.index.remove(d.id)

    def sync(self) -> tuple[int, int]:
        """Pick up changes made by other processes (the CLI, another server): adds decisions
        activated elsewhere, drops those revoked elsewhere. Returns (added, removed)."""
        now = self.clock()
        with self._lock:
            with self._sessions() as session:
                live = set(
                    session.scalars(
                        select(DecisionRow.id).where(
                            DecisionRow.state == DecisionState.ACTIVE.value,
                            DecisionRow.expires > now,
                        )
                    ).all()
                )
                known = self.index.ids()
                missing = live - known
                rows = (
                    session.scalars(select(DecisionRow).where(DecisionRow.id.in_(missing))).all()
                    if missing
                    else []
                )
            gone = [i for i in known - live if (d := self.index.get(i)) and d.expires > now]
            for i in gone:
                self.index.remove(i)
            for r in rows:
                self.index.add(_from_row(r))
        return len(rows), len(gone)

    def add(self, decision: Decision, *, actor: str | None = None) -> Decision:
        if decision.expires <= decision.created:
            raise InputError("a decision must last a positive duration")
        who = actor or decision.origin
        self._write([decision], who, f"decision.{decision.state.value}")
        return decision

    def add_many(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if d.expires <= d.created:
                raise InputError("a decision must last a positive duration")
        if decisions:
            self._write(decisions, decisions[0].origin, "decision.created")

    def revoke(self, decision_id: str, *, by: str, reason: str = "") -> Decision:
        d = self.get(decision_id)
        if d.state not in (DecisionState.ACTIVE, DecisionState.PENDING, DecisionState.SIMULATED):
            raise InputError(f"decision {decision_id} is already {d.state.value}")
        now = self.clock()
        revoked = d.with_state(DecisionState.REVOKED, revoked_by=by, revoked_at=now)
        self._write([revoked], by, "decision.revoked", {"why": reason}, update=True)
        return revoked

    def approve(self, decision_id: str, *, by: str) -> Decision:
        """Enforce a pending decision; its duration counts from the approval."""
        d = self.get(decision_id)
        if d.state is not DecisionState.PENDING:
            raise InputError(f"decision {decision_id} is {d.state.value}, not pending")
        now = self.clock()
        approved = d.with_state(
            DecisionState.ACTIVE, created=now, expires=now + d.duration, revoked_by=None
        )
        self._write([approved], by, "decision.approved", update=True)
        return approved

    def reject(self, decision_id: str, *, by: str, reason: str = "") -> Decision:
        d = self.get(decision_id)
        if d.state is not DecisionState.PENDING:
            raise InputError(f"decision {decision_id} is {d.state.value}, not pending")
        rejected = d.with_state(DecisionState.REJECTED, revoked_by=by, revoked_at=self.clock())
        self._write([rejected], by, "decision.rejected", {"why": reason}, update=True)
        return rejected

    def sweep(self) -> list[Decision]:
        """Forget expired decisions in memory (the database keeps them, with their expiry)."""
        return self.index.sweep(self.clock())
