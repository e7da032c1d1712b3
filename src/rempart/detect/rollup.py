"""Risk roll-up and campaign correlation: rules fed by other rules' signals, not by events.

Risk: every rule with ``risk: N`` adds N points to its entity once per firing period (its
``dedupe`` period); a risk rule with ``signals`` only counts those rules. Scores decay
exponentially with event time (``half_life``). When an entity's
score reaches the risk rule's ``threshold``, the risk rule fires, listing the contributing signals
with what each said when it fired (the last ``DETAILS_PER_SIGNAL`` times, with their time).

Campaign: when a listed signal fires for an account, the signal's triggering event gives the
campaign key (e.g. its ``user_agent`` or ``ip16``). When ``min_accounts`` distinct accounts raise
a listed signal under the same key within ``window``, and that many is improbable by chance, the
campaign rule fires for all of them. On a large portal the most common browser or ISP block is
shared by a third of the accounts, so a third of the accounts raising signals on any day share
it: that is no campaign. The chance is the binomial tail ``P(X >= k)`` for the ``n`` accounts
that raised a listed signal within the window (under any key), each sharing the key with the
probability ``p`` that an account without a signal that logged in within the window did
(``alpha``). Without logins to learn ``p`` from, the count alone decides.
"""

from __future__ import annotations

import math
from typing import Any

from rempart.detect.expr import local_strftime
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import (
    Fire,
    RecentValues,
    drop_keys,
    human_duration,
    key_getter,
)
from rempart.events import Event

#: What a risk alert quotes of each contributing signal: its last few firings.
DETAILS_PER_SIGNAL = 3


class RiskRollup:
    __slots__ = ("scores", "spec")

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        #: entity -> [score, last ts, first contribution ts, {title: points},
        #: {title: [[ts, what the signal said], ...]}]
        self.scores: dict[str, list[Any]] = {}

    def add(
        self, entity: str, title: str, points: float, ts: float, detail: str = ""
    ) -> Fire | None:
        st = self.scores.get(entity)
        if st is None:
            st = self.scores[entity] = [0.0, ts, ts, {}, {}]
        decay = 0.5 ** ((ts - st[1]) / self.spec.half_life)
        st[0] = st[0] * decay + points
        st[1] = ts
        contrib: dict[str, float] = st[3]
        details: dict[str, list[list[Any]]] = st[4]
        for k in list(contrib):
            contrib[k] *= decay
            if contrib[k] < 1:
                del contrib[k]
                details.pop(k, None)
        if not contrib:
            st[2] = ts
        contrib[title] = contrib.get(title, 0.0) + points
        if detail:
            said = details.setdefault(title, [])
            said.append([ts, detail])
            del said[:-DETAILS_PER_SIGNAL]
        if st[0] < self.spec.threshold or len(contrib) < self.spec.min_signals:
            return None
        signals = ", ".join(
            f"{t} ({p:.0f}){_quoted(details.get(t))}"
            for t, p in sorted(contrib.items(), key=lambda x: -x[1])
        )
        text = (
            f"{entity}: risk {st[0]:.0f} >= {self.spec.threshold:.0f} from weak signals in "
            f"{human_duration(ts - st[2])}: {signals}"
        )
        return Fire(entity, st[2], text, {"risk": st[0], "signals": float(len(contrib))})

    def evict(self, now: float) -> int:
        dead = [k for k, st in self.scores.items() if now - st[1] > 8 * self.spec.half_life]
        return drop_keys(self.scores, dead)

    def dump(self) -> dict[str, Any]:
        return {k: _copied(st) for k, st in self.scores.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.scores = {k: _copied(v) for k, v in data.items()}


def _copied(st: list[Any]) -> list[Any]:
    """A deep enough copy of one entity's score record (states saved before the signals'
    details were kept have four fields: they get none)."""
    details = st[4] if len(st) > 4 else {}
    return [st[0], st[1], st[2], dict(st[3]), {t: [list(d) for d in w] for t, w in details.items()}]


def _quoted(said: list[list[Any]] | None) -> str:
    """`` [20 Nov 14:13: what the signal said | ...]`` (empty without details)."""
    if not said:
        return ""
    quotes = (f"{local_strftime(ts, '%d %b %H:%M')}: {text}" for ts, text in said)
    return " [" + " | ".join(quotes) + "]"


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lg = math.lgamma
    log_p, log_q = math.log(p), math.log1p(-p)
    return min(
        1.0,
        sum(
            math.exp(lg(n + 1) - lg(i + 1) - lg(n - i + 1) + i * log_p + (n - i) * log_q)
            for i in range(k, n + 1)
        ),
    )


class CampaignCorrelator:
    __slots__ = ("key_of", "logins", "logins_by_key", "members", "signalled", "spec")

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        self.key_of = key_getter(spec.group_by)
        #: campaign key -> {account: last signal ts}
        self.members: dict[str, dict[str, float]] = {}
        #: account -> last signal ts under any key, oldest first (the binomial's ``n``)
        self.signalled = RecentValues()
        #: account -> last successful login, oldest first; and the same per key (``p``)
        self.logins = RecentValues()
        self.logins_by_key: dict[str, RecentValues] = {}

    def login(self, ev: Event) -> None:
        """A successful login: who uses which key, the base rate a campaign is judged by."""
        account = ev.user_name
        key = self.key_of(ev)
        if account is None or key is None:
            return
        self.logins.touch(account, ev.ts)
        by_key = self.logins_by_key.get(key)
        if by_key is None:
            by_key = self.logins_by_key[key] = RecentValues()
        by_key.touch(account, ev.ts)

    def add(self, account: str, ev: Event) -> Fire | None:
        key = self.key_of(ev)
        if key is None:
            return None
        ts = ev.ts
        members = self.members.get(key)
        if members is None:
            members = self.members[key] = {}
        members[account] = ts
        limit = ts - self.spec.window
        for acc in [a for a, t in members.items() if t < limit]:
            del members[acc]
        self.signalled.touch(account, ts)
        self.signalled.expire(limit)
        if len(members) < self.spec.min_accounts:
            return None
        chance = self._chance(key, len(members), limit)
        if chance is not None and chance >= self.spec.alpha:
            return None
        accounts = sorted(members)
        first = min(members.values())
        fields = "+".join(self.spec.group_by)
        shown = ", ".join(accounts[:8]) + (
            f" and {len(accounts) - 8} more" if len(accounts) > 8 else ""
        )
        n = len(self.signalled.times)
        odds = (
            ""
            if chance is None
            else f" ({len(accounts)} of the {n} accounts with signals in "
            f"{human_duration(self.spec.window)}; chance {chance:.1g})"
        )
        text = (
            f"{len(accounts)} accounts raised harvesting signals within "
            f"{human_duration(ts - first)} sharing {fields} {key}{odds}: {shown}"
        )
        return Fire(
            f"{fields}={key}", first, text, {"accounts": float(len(accounts))}, related=accounts
        )

    def _chance(self, key: str, k: int, limit: float) -> float | None:
        """The binomial tail of ``k`` accounts with signals sharing ``key``, ``p`` being the
        share of the key among the accounts without signals that logged in since ``limit``
        (None when there are none to learn it from)."""
        self.logins.expire(limit)
        by_key = self.logins_by_key.get(key)
        if by_key is not None:
            by_key.expire(limit)
        # Counted through the few accounts with signals, not the many that logged in.
        signalled = self.signalled.times
        logins = self.logins.times
        quiet = len(logins) - sum(1 for a in signalled if a in logins)
        if quiet == 0:
            return None
        sharing = 0
        if by_key is not None:
            key_logins = by_key.times
            sharing = len(key_logins) - sum(1 for a in signalled if a in key_logins)
        return binomial_tail(k, len(signalled), sharing / quiet)

    def evict(self, now: float) -> int:
        limit = now - self.spec.window
        dead = [k for k, m in self.members.items() if not m or max(m.values()) < limit]
        drop_keys(self.members, dead)
        self.signalled.expire(limit)
        self.logins.expire(limit)
        for key, by_key in list(self.logins_by_key.items()):
            by_key.expire(limit)
            if not by_key.times:
                del self.logins_by_key[key]
        return len(dead)

    def dump(self) -> dict[str, Any]:
        return {
            "members": {k: dict(m) for k, m in self.members.items()},
            "signalled": list(self.signalled.times.items()),
            "logins": list(self.logins.times.items()),
            "logins_by_key": {k: list(m.times.items()) for k, m in self.logins_by_key.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        if not isinstance(data.get("logins"), list):
            # A checkpoint from before the base rates: key -> members (dicts only).
            self.members = {k: dict(m) for k, m in data.items()}
            return
        self.members = {k: dict(m) for k, m in data["members"].items()}
        self.signalled = RecentValues.of(data.get("signalled", ()))
        self.logins = RecentValues.of(data.get("logins", ()))
        self.logins_by_key = {
            k: RecentValues.of(m) for k, m in data.get("logins_by_key", {}).items()
        }
