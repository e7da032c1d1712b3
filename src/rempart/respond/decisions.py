"""Decisions (CrowdSec's model, extended to identities) and the in-memory index that answers checks.

A decision says what to do with requests of one *scope* (``account``, ``ip``, ``range``,
``session``, ``organization``) and value: ``block``, ``step_up`` (require strong authentication
again), ``throttle`` (token bucket at ``rate``), ``read_only`` (refuse writes), or ``notify``
(enforces nothing). It lives from ``created`` to ``expires`` (exact: a check at ``expires`` no
longer sees it), unless revoked first.

``DecisionIndex`` keeps the enforceable decisions in dictionaries so that a check is a handful of
dictionary look-ups, whatever the number of decisions: one per (scope, value) for accounts,
sessions, IPs and organisations, and one per prefix length present for ranges.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rempart.errors import InputError

#: Seconds since the Unix epoch; servers pass ``time.time``, tests a fake clock.
Clock = Callable[[], float]


class Scope(StrEnum):
    ACCOUNT = "account"
    IP = "ip"
    RANGE = "range"
    SESSION = "session"
    ORGANIZATION = "organization"


class DecisionType(StrEnum):
    BLOCK = "block"
    STEP_UP = "step_up"
    THROTTLE = "throttle"
    READ_ONLY = "read_only"
    NOTIFY = "notify"

    @property
    def strength(self) -> int:
        """Which decision wins when several apply to one request (higher wins)."""
        return _STRENGTH[self.value]


_STRENGTH = {"notify": 0, "throttle": 1, "read_only": 2, "step_up": 3, "block": 4}


class DecisionState(StrEnum):
    ACTIVE = "active"
    #: Waiting for an analyst (a safety cap was reached); not enforced.
    PENDING = "pending"
    #: Simulation mode: recorded as what would have been done; never enforced.
    SIMULATED = "simulated"
    REVOKED = "revoked"
    #: A pending decision an analyst refused.
    REJECTED = "rejected"


def new_decision_id() -> str:
    return "d-" + secrets.token_hex(8)


def normalise_value(scope: Scope, value: str) -> str:
    """Canonical value of a scope (IP and range written by :mod:`ipaddress`)."""
    value = value.strip()
    if not value:
        raise InputError(f"empty {scope.value} value")
    try:
        if scope is Scope.IP:
            return str(ipaddress.ip_address(value))
        if scope is Scope.RANGE:
            return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise InputError(f"not a valid {scope.value}: {value!r}") from None
    return value


@dataclass(slots=True, frozen=True)
class Rate:
    """A throttle rate: ``per_second`` tokens refill, bucket of ``burst``."""

    per_second: float
    burst: int

    @classmethod
    def parse(cls, text: str, burst: int | None = None) -> Rate:
        """``"60/min"``, ``"5/s"``, ``"1000/h"`` (or ``"/minute"``, ``"/second"``, ``"/hour"``)."""
        count, sep, unit = text.replace(" ", "").partition("/")
        units = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
        units |= {"h": 3600, "hour": 3600}
        try:
            n = float(count)
        except ValueError:
            raise InputError(f"invalid rate {text!r}", hint="write e.g. 60/min") from None
        if not sep or unit not in units or not math.isfinite(n) or n <= 0:
            raise InputError(f"invalid rate {text!r}", hint="write e.g. 60/min, 5/s, 1000/h")
        per_second = n / units[unit]
        return cls(per_second, burst if burst is not None else max(1, int(min(n, 10))))

    def __str__(self) -> str:
        return f"{self.per_second * 60:g}/min"


@dataclass(slots=True, frozen=True)
class Decision:
    id: str
    scope: Scope
    value: str
    type: DecisionType
    created: float
    expires: float
    reason: str
    #: ``rule:<rule id>`` for automatic decisions, ``analyst:<name>`` for manual ones.
    origin: str
    alert_id: str | None = None
    state: DecisionState = DecisionState.ACTIVE
    rate: Rate | None = None
    revoked_by: str | None = None
    revoked_at: float | None = None
    #: Escalation level (0 for a first offence).
    level: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.expires - self.created

    @property
    def automatic(self) -> bool:
        return self.origin.startswith("rule:")

    def live_at(self, now: float) -> bool:
        """Enforceable at ``now``: active, created and not yet expired (``expires`` excluded)."""
        return self.state is DecisionState.ACTIVE and self.created <= now < self.expires

    def with_state(self, state: DecisionState, **changes: Any) -> Decision:
        return replace(self, state=state, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope.value,
            "value": self.value,
            "type": self.type.value,
            "rate": str(self.rate) if self.rate else None,
            "burst": self.rate.burst if self.rate else None,
            "state": self.state.value,
            "created": self.created,
            "expires": self.expires,
            "duration": self.duration,
            "reason": self.reason,
            "origin": self.origin,
            "alert_id": self.alert_id,
            "level": self.level,
            "revoked_by": self.revoked_by,
            "revoked_at": self.revoked_at,
        }


@dataclass(slots=True, frozen=True)
class CheckRequest:
    account: str | None = None
    ip: str | None = None
    session: str | None = None
    organization: str | None = None


class DecisionIndex:
    """Enforceable decisions by (scope, value); writers lock, readers only look up dictionaries.

    Expiry is checked at read time against the clock, so it is exact even between sweeps.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exact: dict[tuple[Scope, str], dict[str, Decision]] = {}
        # (ip version, prefix length) -> network address as int -> decisions
        self._ranges: dict[tuple[int, int], dict[int, dict[str, Decision]]] = {}
        self._by_id: dict[str, Decision] = {}
        #: account -> organization, for organization-scoped decisions.
        self.organization_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, decision: Decision) -> None:
        if decision.state is not DecisionState.ACTIVE:
            return
        with self._lock:
            self._by_id[decision.id] = decision
            if decision.scope is Scope.RANGE:
                net = ipaddress.ip_network(decision.value, strict=False)
                bucket = self._ranges.setdefault((net.version, net.prefixlen), {})
                bucket.setdefault(int(net.network_address), {})[decision.id] = decision
            else:
                self._exact.setdefault((decision.scope, decision.value), {})[decision.id] = decision

    def remove(self, decision_id: str) -> None:
        with self._lock:
            decision = self._by_id.pop(decision_id, None)
            if decision is None:
                return
            if decision.scope is Scope.RANGE:
                net = ipaddress.ip_network(decision.value, strict=False)
                key = (net.version, net.prefixlen)
                bucket = self._ranges.get(key, {})
                slot = bucket.get(int(net.network_address), {})
                slot.pop(decision_id, None)
                if not slot:
                    bucket.pop(int(net.network_address), None)
                if not bucket:
                    self._ranges.pop(key, None)
            else:
                k = (decision.scope, decision.value)
                slot = self._exact.get(k, {})
                slot.pop(decision_id, None)
                if not slot:
                    self._exact.pop(k, None)

    def ids(self) -> set[str]:
        return set(self._by_id)

    def get(self, decision_id: str) -> Decision | None:
        return self._by_id.get(decision_id)

    def replace_all(self, decisions: Iterable[Decision]) -> None:
        """Swap in a new content at once (readers never see a half-built index)."""
        fresh = DecisionIndex()
        for d in decisions:
            fresh.add(d)
        with self._lock:
            self._exact, self._ranges, self._by_id = fresh._exact, fresh._ranges, fresh._by_id

    def sweep(self, now: float) -> list[Decision]:
        """Drop expired decisions from memory; returns them."""
        gone = [d for d in list(self._by_id.values()) if d.expires <= now]
        for d in gone:
            self.remove(d.id)
        return gone

    def active(self, now: float) -> list[Decision]:
        return [d for d in list(self._by_id.values()) if d.live_at(now)]

    def live_for(self, scope: Scope, value: str, now: float) -> list[Decision]:
        """Live decisions on exactly this (scope, value)."""
        if scope is Scope.RANGE:
            return [d for d in self.active(now) if d.scope is scope and d.value == value]
        slot = self._exact.get((scope, value))
        return [d for d in list(slot.values()) if d.live_at(now)] if slot else []

    def matching(self, req: CheckRequest, now: float) -> list[Decision]:
        """Every live decision that applies to the request."""
        found: list[Decision] = []
        exact = self._exact

        def take(scope: Scope, value: str | None) -> None:
            if value:
                slot = exact.get((scope, value))
                if slot:
                    found.extend(d for d in list(slot.values()) if d.live_at(now))

        take(Scope.ACCOUNT, req.account)
        take(Scope.SESSION, req.session)
        organization = req.organization
        if organization is None and req.account:
            organization = self.organization_of.get(req.account)
        take(Scope.ORGANIZATION, organization)
        if req.ip:
            try:
                addr = ipaddress.ip_address(req.ip)
            except ValueError:
                addr = None
            if addr is not None:
                take(Scope.IP, str(addr))
                if self._ranges:
                    as_int = int(addr)
                    bits = addr.max_prefixlen
                    for (version, plen), bucket in list(self._ranges.items()):
                        if version != addr.version:
                            continue
                        net = (as_int >> (bits - plen)) << (bits - plen) if plen else 0
                        slot = bucket.get(net)
                        if slot:
                            found.extend(d for d in list(slot.values()) if d.live_at(now))
        return found

    def strongest(self, req: CheckRequest, now: float) -> Decision | None:
        """The decision that governs the request (block > step_up > read_only > throttle)."""
        best: Decision | None = None
        for d in self.matching(req, now):
            if d.type is DecisionType.NOTIFY:
                continue
            if best is None or d.type.strength > best.type.strength:
                best = d
        return best
