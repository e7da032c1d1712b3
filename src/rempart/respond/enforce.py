"""Turn the decisions that apply to a request into a verdict, in memory.

Used by the server's ``/v1/decisions/check`` (for nginx) and by the ASGI middleware, so both
enforce exactly the same thing:

- ``block`` -> 403; ``step_up`` -> 401 until the session completes strong authentication
  (an ``auth.mfa`` success seen in the traffic for that account and session); the MFA request
  itself (``purpose="mfa"``) is let through;
- ``read_only`` -> 403 for methods that write, allowed for GET/HEAD/OPTIONS;
- ``throttle`` -> a token bucket per decision (so per account, IP...): 429 with the seconds to
  wait when empty, allowed otherwise.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from rempart.events import Action, Event, Outcome
from rempart.respond.decisions import (
    CheckRequest,
    Clock,
    Decision,
    DecisionIndex,
    DecisionType,
    Rate,
    Scope,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenBucket:
    """Classic token bucket: ``burst`` tokens, refilled at ``per_second``."""

    __slots__ = ("burst", "per_second", "tokens", "updated")

    def __init__(self, rate: Rate, now: float):
        self.per_second = rate.per_second
        self.burst = float(rate.burst)
        self.tokens = self.burst
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second


@dataclass(slots=True, frozen=True)
class Verdict:
    #: 204 allow, 403 block / read-only write, 401 step-up, 429 throttled.
    status: int
    decision: Decision | None = None
    retry_after: float | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 204

    @property
    def label(self) -> str:
        return self.decision.type.value if self.decision else "allow"

    def headers(self) -> dict[str, str]:
        if self.decision is None:
            return {"X-Rempart-Decision": "allow"}
        d = self.decision
        out = {
            "X-Rempart-Decision": d.type.value,
            "X-Rempart-Decision-Id": d.id,
            "X-Rempart-Scope": d.scope.value,
            "X-Rempart-Expires": str(math.ceil(d.expires)),
        }
        if self.retry_after is not None:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return out


class Enforcer:
    def __init__(self, index: DecisionIndex, clock: Clock):
        self.index = index
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._bucket_lock = threading.Lock()
        #: (account, session) pairs that completed strong authentication, with when.
        self._stepped_up: dict[tuple[str, str], float] = {}

    def observe(self, event: Event) -> None:
        """Learn from the traffic: a successful MFA clears a step-up for that session."""
        if (
            event.action == Action.MFA
            and event.outcome == Outcome.SUCCESS
            and event.user_name
            and event.session_id
        ):
            if len(self._stepped_up) > 500_000:
                self._stepped_up.clear()
            self._stepped_up[(event.user_name, event.session_id)] = event.ts

    def _step_up_satisfied(self, d: Decision, req: CheckRequest) -> bool:
        if not (req.account and req.session):
            return False
        done = self._stepped_up.get((req.account, req.session))
        # access logs have 1-second resolution: an MFA in the decision's second counts
        return done is not None and done >= d.created - 1.0

    def _throttle(self, d: Decision, now: float) -> float:
        rate = d.rate or Rate(1.0, 1)
        with self._bucket_lock:
            bucket = self._buckets.get(d.id)
            if bucket is None:
                if len(self._buckets) > 100_000:
                    live = {x.id for x in self.index.active(now)}
                    self._buckets = {k: v for k, v in self._buckets.items() if k in live}
                bucket = self._buckets[d.id] = TokenBucket(rate, now)
            return bucket.take(now)

    def check(
        self, req: CheckRequest, method: str | None = None, purpose: str | None = None
    ) -> Verdict:
        """``purpose="mfa"``: the request *is* the strong authentication a step-up asks for, so
        a step-up does not stop it (a block or a throttle still does)."""
        now = self.clock()
        found = self.index.matching(req, now)
        if not found:
            return Verdict(204)
        found.sort(key=lambda d: (d.type.strength, d.scope is Scope.ACCOUNT), reverse=True)
        applied: Decision | None = None
        for d in found:
            if d.type is DecisionType.BLOCK:
                return Verdict(403, d)
            if d.type is DecisionType.STEP_UP:
                if purpose != "mfa" and not self._step_up_satisfied(d, req):
                    return Verdict(401, d)
                applied = applied or d
            elif d.type is DecisionType.READ_ONLY:
                if (method or "GET").upper() not in SAFE_METHODS:
                    return Verdict(403, d)
                applied = applied or d
            elif d.type is DecisionType.THROTTLE:
                wait = self._throttle(d, now)
                if wait > 0:
                    return Verdict(429, d, wait)
                applied = applied or d
        return Verdict(204, applied)
