"""Reference runtimes for the engine equivalence tests: the per-rule ``baseline`` and
``temporal_ordered`` implementations as they were before the shared-state optimisations
(commit e01f5ef), kept verbatim apart from their class names and the peers' bar, which leaves
outliers out since the eighteenth session (``rempart.detect.baseline.peer_bar``, shared), and
the day an explanation's "today" names when it is read later (``dated``, shared).
Each baseline rule keeps its own per-account day state and judges every read; the optimised
engine must give the same alerts.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from statistics import median
from typing import Any

from rempart.detect.baseline import dated, peer_bar
from rempart.detect.expr import (
    compile_node,
    parse,
    required_actions,
    resolve_field,
    utc_offset,
)
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import CompiledRule, EventContext, Fire, _Step, human_duration
from rempart.events import Event

PEER_MIN_DAYS = 30
PEER_CAP = 20000


def local_day(ts: float) -> int:
    """Local calendar day number (days since 1970-01-01 in the portal's time zone)."""
    t = int(ts)
    return (t + utc_offset(t)) // 86400


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.1f}"


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class _Day:
    __slots__ = (
        "day",
        "days",
        "group",
        "history",
        "new",
        "orphans",
        "pending",
        "recent",
        "thr",
        "today",
    )

    def __init__(self, day: int, group: str | None):
        self.day = day
        self.group = group
        self.today: set[int] = set()
        self.new = 0
        self.orphans = 0
        #: (time, novel) of reads awaiting a claim (claim-pairing quantities only).
        self.pending: list[tuple[float, bool]] = []
        #: Values of the last active days (float32: 4 bytes a day).
        self.history = array("f")
        self.thr: tuple[float, float | None, float | None] | None = None
        #: Active days seen so far (the first one is a warm-up for novelty quantities).
        self.days = 0
        #: (day, value) of the previous days inside the rule's span (``span_days`` > 1 only).
        self.recent: list[tuple[int, float]] = []


class ReferenceBaselineRule(CompiledRule):
    __slots__ = ("group_of", "pairs_claims", "peer_cache", "peers", "quantity")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.quantity = spec.quantity or "distinct_beneficiaries"
        self.pairs_claims = self.quantity in ("reads_without_claim", "new_without_claim")
        if self.pairs_claims:
            if self.actions is not None:
                self.actions = self.actions | {"claim.create"}
            reads = self.matches
            self.matches = lambda e: e.action == "claim.create" or reads(e)
        resolved = resolve_field(spec.peer_group) if spec.peer_group else None
        self.group_of = resolved[1] if resolved else None
        self.peers: dict[str, deque[tuple[int, float]]] = {}
        self.peer_cache: dict[tuple[str, int], float | None] = {}

    # -- day handling ---------------------------------------------------------------------
    def _value(self, st: _Day) -> float:
        """Today's value, plus the previous days' inside ``span_days`` (a rolling sum)."""
        value = self._day_value(st)
        if st.recent:
            oldest = st.day - self.spec.span_days
            value += sum(v for d, v in st.recent if d > oldest)
        return value

    def _day_value(self, st: _Day) -> float:
        q = self.quantity
        if q == "distinct_beneficiaries":
            return float(len(st.today))
        if q == "new_beneficiaries":
            return float(st.new)
        if q == "new_without_claim":
            return float(st.orphans)
        if q == "novelty_share":
            n = len(st.today)
            return st.new / n if n >= self.spec.min_reads else 0.0
        return float(st.orphans)

    def _roll(self, st: _Day, day: int) -> None:
        if st.today or st.orphans:
            st.days += 1
            value = self._value(st)
            novelty = self.quantity in ("new_beneficiaries", "novelty_share", "new_without_claim")
            # Novelty: the first day sees everything as new. Spans: a partial span is no usual.
            warm_up = (novelty and st.days == 1) or st.days < self.spec.span_days
            if not warm_up and (
                self.quantity != "novelty_share" or len(st.today) >= self.spec.min_reads
            ):
                st.history.append(value)
                if len(st.history) > self.spec.history_days:
                    del st.history[0]
                if st.group is not None:
                    pool = self.peers.get(st.group)
                    if pool is None:
                        pool = self.peers[st.group] = deque(maxlen=PEER_CAP)
                    pool.append((st.day, value))
        if self.spec.span_days > 1:
            st.recent.append((st.day, self._day_value(st)))
            oldest = day - self.spec.span_days
            st.recent = [(d, v) for d, v in st.recent if d > oldest]
        st.day = day
        st.today = set()
        st.new = 0
        st.orphans = 0
        st.thr = None

    def _peer(self, group: str | None, day: int) -> float | None:
        if group is None:
            return None
        ck = (group, day)
        if ck in self.peer_cache:
            return self.peer_cache[ck]
        pool = self.peers.get(group)
        value: float | None = None
        if pool is not None:
            oldest = day - self.spec.history_days
            vals = [v for d, v in pool if d >= oldest]
            if len(vals) >= PEER_MIN_DAYS:
                value = peer_bar(vals, self.spec.peer_quantile, self.spec.min_value)
        if len(self.peer_cache) > 4096:
            self.peer_cache.clear()
        self.peer_cache[ck] = value
        return value

    def _threshold(self, st: _Day) -> tuple[float, float | None, float | None]:
        if st.thr is None:
            own: float | None = None
            hist = st.history
            if self.spec.span_days > 1:
                # Rolling sums of the last span overlap today's: they would learn the attack.
                hist = hist[: max(0, len(hist) - (self.spec.span_days - 1))]
            if len(hist) >= self.spec.min_history:
                med = median(hist)
                mad = median(abs(x - med) for x in hist)
                own = max(_quantile(hist, 0.95), med + 3 * 1.4826 * mad)
            peer = self._peer(st.group, st.day)
            parts = [self.spec.min_value]
            if own is not None:
                parts.append(self.spec.own_factor * own)
            if peer is not None:
                parts.append(self.spec.peer_factor * peer)
            thr = max(parts) if (own is not None or peer is not None) else float("inf")
            st.thr = (thr, own, peer)
        return st.thr

    # -- events ---------------------------------------------------------------------------
    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key_of(ev)
        if key is None:
            return None
        ts = ev.ts
        if ctx.day_ts != ts:
            ctx.day = local_day(ts)
            ctx.day_ts = ts
        day = ctx.day
        st = self.state.get(key)
        early: Fire | None = None
        if st is None:
            group = self.group_of(ev) if self.group_of is not None else None
            st = self.state[key] = _Day(day, None if group is None else str(group))
        if self.pairs_claims:
            pending = st.pending
            limit = ts - self.spec.claim_window
            expired = 0
            only_new = self.quantity == "new_without_claim"
            while pending and pending[0][0] < limit:
                _t, novel = pending.pop(0)
                if novel or not only_new:
                    st.orphans += 1
                    expired += 1
            if expired:
                # Orphans belong to the day of their read: judge that day before rolling.
                early = self._judge(key, st, ts)
        if day != st.day:
            self._roll(st, day)
        if self.pairs_claims and ev.action == "claim.create":
            if st.pending:
                st.pending.pop()  # a claim follows its rights check: pair with the latest
            return early
        bh = ctx.bh
        if bh is None or not ev.categories:
            return early
        today = st.today
        if bh not in today:
            today.add(bh)
            if ctx.novel:
                st.new += 1
        if self.pairs_claims:
            st.pending.append((ts, ctx.novel))
        # Fast path: most events leave the entity under its (cached) threshold.
        thr_cached = st.thr
        if (
            thr_cached is not None
            and self.quantity == "distinct_beneficiaries"
            and len(today) <= thr_cached[0]
        ):
            return early
        return self._judge(key, st, ts) or early

    def _judge(self, key: str, st: _Day, ts: float) -> Fire | None:
        value = self._value(st)
        thr, own, peer = st.thr if st.thr is not None else self._threshold(st)
        if value <= thr:
            return None
        history = list(st.history)
        today, new, day = len(st.today), st.new, st.day
        return Fire(
            key,
            ts,
            lambda: dated(self._explain(key, today, new, history, value, own, peer), day, ts),
            {
                "value": value,
                "threshold": thr,
                "distinct_today": float(today),
                "new_today": float(new),
            },
            st.today,
            period=day,
        )

    def _explain(
        self,
        key: str,
        n: int,
        new: int,
        history: list[float],
        value: float,
        own: float | None,
        peer: float | None,
    ) -> str:
        q = self.quantity
        if q == "distinct_beneficiaries":
            head = f"{key} read {n:,} distinct beneficiaries today"
        elif q == "new_beneficiaries":
            head = f"{key} read {new:,} beneficiaries it had never read before today"
        elif q == "novelty_share":
            head = f"{key}: {value:.0%} of today's {n:,} beneficiaries never seen before"
        elif q == "new_without_claim":
            head = (
                f"{key}: {int(value):,} beneficiaries never seen before read today "
                "with no claim following"
            )
        else:
            head = f"{key}: {int(value):,} reads today not followed by any claim"
        if self.spec.span_days > 1:
            head = head.replace(" today", f" over the last {self.spec.span_days} days")
        parts = [head]
        pct = round(100 * self.spec.peer_quantile)
        if own is not None:
            usual = (
                "week"
                if self.spec.span_days == 7
                else "day"
                if self.spec.span_days == 1
                else (f"{self.spec.span_days} days")
            )
            parts.append(f"its usual {usual} is {_num(median(history))}")
        if peer is not None:
            parts.append(f"its peers' {pct}th percentile {_num(peer)}")
        if q in ("distinct_beneficiaries", "reads_without_claim") and n:
            parts.append(f"{new / n:.0%} never seen before")
        return "; ".join(parts)

    def evict(self, now: float) -> int:
        return 0

    def dump(self) -> dict[str, Any]:
        keys = {
            k: [
                st.day,
                st.group,
                sorted(st.today),
                st.new,
                st.orphans,
                [[t, h] for t, h in st.pending],
                st.history.tolist(),
                st.days,
                [[d, v] for d, v in st.recent],
            ]
            for k, st in self.state.items()
        }
        peers = {g: [[d, v] for d, v in pool] for g, pool in self.peers.items()}
        return {"keys": keys, "peers": peers}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {}
        for k, item in data["keys"].items():
            day, group, today, new, orphans, pending, history, days = item[:8]
            st = _Day(day, group)
            st.recent = [(d, v) for d, v in (item[8] if len(item) > 8 else [])]
            st.days = days
            st.today = set(today)
            st.new = new
            st.orphans = orphans
            st.pending = [(t, bool(h)) for t, h in pending]
            st.history = array("f", history)
            self.state[k] = st
        self.peers = {
            g: deque(((d, v) for d, v in pool), maxlen=PEER_CAP)
            for g, pool in data["peers"].items()
        }
        self.peer_cache = {}


class ReferenceTemporalOrderedRule(CompiledRule):
    """Steps in order per key within ``window`` (Sigma ``temporal_ordered``).

    The first step may need ``count`` events within the window; once a step is complete the next
    one starts counting. The chain restarts when it grows older than the window. After the last
    step the rule keeps firing (the engine turns that into updates of one alert).
    """

    __slots__ = ("step_matches", "steps")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.steps = [_Step(s.count, s.distinct, s.name) for s in spec.steps]
        self.step_matches = [compile_node(parse(s.filter)) for s in spec.steps]
        acts: set[str] | None = set()
        for s in spec.steps:
            a = required_actions(parse(s.filter))
            if a is None or acts is None:
                acts = None
            else:
                acts |= a
        if self.actions is None and acts is not None:
            self.actions = frozenset(acts)
        elif self.actions is not None and acts is not None:
            self.actions = self.actions & frozenset(acts)

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key_of(ev)
        if key is None:
            return None
        # state: [stage, chain_start, first-step times, count or distinct set]
        st = self.state.get(key)
        ts = ev.ts
        window = self.spec.window
        if st is None:
            st = self.state[key] = [0, 0.0, [], 0, []]
        if st[0] > 0 and ts - st[1] > window:
            st[0], st[1], st[2], st[3], st[4] = 0, 0.0, [], 0, []
        stage = st[0]
        steps = self.steps
        if stage == 0:
            first = steps[0]
            if self.step_matches[0](ev):
                times = st[2]
                times.append(ts)
                while times and times[0] < ts - window:
                    times.pop(0)
                if len(times) >= first.count:
                    st[0], st[1], st[2] = 1, times[-first.count], []
            return None
        if stage >= len(steps):
            if self.step_matches[-1](ev):
                return self._fire(key, st, ev)
            return None
        step = steps[stage]
        if not self.step_matches[stage](ev):
            return None
        if step.distinct_of is not None:
            value = step.distinct_of(ev)
            if value is not None and value not in st[4]:
                st[4].append(value)
            done = len(st[4]) >= step.count
        else:
            st[3] += 1
            done = st[3] >= step.count
        if done:
            st[0], st[3], st[4] = stage + 1, 0, []
            if st[0] >= len(steps):
                return self._fire(key, st, ev)
        return None

    def _fire(self, key: str, st: list[Any], ev: Event) -> Fire:
        names = " then ".join(s.name for s in self.steps)
        text = f"{key}: {names} within {human_duration(ev.ts - st[1])}"
        return Fire(key, st[1], text, {"elapsed_s": ev.ts - st[1]})

    def evict(self, now: float) -> int:
        limit = now - self.spec.window
        dead = [
            k
            for k, st in self.state.items()
            if (st[0] > 0 and st[1] < limit) or (st[0] == 0 and (not st[2] or st[2][-1] < limit))
        ]
        for k in dead:
            del self.state[k]
        return len(dead)

    def dump(self) -> dict[str, Any]:
        return {k: list(st) for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: list(v) for k, v in data.items()}
