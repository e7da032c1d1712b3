"""Risk roll-up and campaign correlation: rules fed by other rules' signals, not by events.

Risk: every rule with ``risk: N`` adds N points to its entity once per firing period (its
``dedupe`` period); a risk rule with ``signals`` only counts those rules. Scores decay
exponentially with event time (``half_life``). When an entity's
score reaches the risk rule's ``threshold``, the risk rule fires, listing the contributing signals.

Campaign: when a listed signal fires for an account, the signal's triggering event gives the
campaign key (e.g. its ``user_agent`` or ``ip16``). When ``min_accounts`` distinct accounts raise
a listed signal under the same key within ``window``, the campaign rule fires for all of them.
"""

from __future__ import annotations

from typing import Any

from rempart.detect.spec import RuleSpec
from rempart.detect.windows import Fire, human_duration, key_getter
from rempart.events import Event


class RiskRollup:
    __slots__ = ("scores", "spec")

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        #: entity -> [score, last ts, first contribution ts, {rule id: points}]
        self.scores: dict[str, list[Any]] = {}

    def add(self, entity: str, rule_id: str, title: str, points: float, ts: float) -> Fire | None:
        st = self.scores.get(entity)
        if st is None:
            st = self.scores[entity] = [0.0, ts, ts, {}]
        decay = 0.5 ** ((ts - st[1]) / self.spec.half_life)
        st[0] = st[0] * decay + points
        st[1] = ts
        contrib: dict[str, float] = st[3]
        for k in list(contrib):
            contrib[k] *= decay
            if contrib[k] < 1:
                del contrib[k]
        if not contrib:
            st[2] = ts
        contrib[title] = contrib.get(title, 0.0) + points
        if st[0] < self.spec.threshold:
            return None
        signals = ", ".join(
            f"{t} ({p:.0f})" for t, p in sorted(contrib.items(), key=lambda x: -x[1])
        )
        text = (
            f"{entity}: risk {st[0]:.0f} >= {self.spec.threshold:.0f} from weak signals in "
            f"{human_duration(ts - st[2])}: {signals}"
        )
        return Fire(entity, st[2], text, {"risk": st[0], "signals": float(len(contrib))})

    def evict(self, now: float) -> int:
        dead = [k for k, st in self.scores.items() if now - st[1] > 8 * self.spec.half_life]
        for k in dead:
            del self.scores[k]
        return len(dead)

    def dump(self) -> dict[str, Any]:
        return {k: [st[0], st[1], st[2], dict(st[3])] for k, st in self.scores.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.scores = {k: [v[0], v[1], v[2], dict(v[3])] for k, v in data.items()}


class CampaignCorrelator:
    __slots__ = ("key_of", "members", "spec")

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        self.key_of = key_getter(spec.group_by)
        #: campaign key -> {account: last signal ts}
        self.members: dict[str, dict[str, float]] = {}

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
        if len(members) < self.spec.min_accounts:
            return None
        accounts = sorted(members)
        first = min(members.values())
        fields = "+".join(self.spec.group_by)
        shown = ", ".join(accounts[:8]) + (
            f" and {len(accounts) - 8} more" if len(accounts) > 8 else ""
        )
        text = (
            f"{len(accounts)} accounts raised harvesting signals within "
            f"{human_duration(ts - first)} sharing {fields} {key}: {shown}"
        )
        return Fire(
            f"{fields}={key}", first, text, {"accounts": float(len(accounts))}, related=accounts
        )

    def evict(self, now: float) -> int:
        limit = now - self.spec.window
        dead = [k for k, m in self.members.items() if not m or max(m.values()) < limit]
        for k in dead:
            del self.members[k]
        return len(dead)

    def dump(self) -> dict[str, Any]:
        return {k: dict(m) for k, m in self.members.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.members = {k: dict(m) for k, m in data.items()}
