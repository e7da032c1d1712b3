"""``baseline`` rules: today's quantity for an entity against its own history and its peers.

Quantities (per entity per local calendar day):

- ``distinct_beneficiaries``: distinct beneficiaries disclosed today;
- ``new_beneficiaries``: of those, the ones this account had never read before;
- ``novelty_share``: new / distinct, once at least ``min_reads`` distinct were read today;
- ``reads_without_claim``: disclosures not followed by a claim (``claim.create``) from the same
  account within ``claim_window`` (a claim pairs with the latest pending read: in the portal a
  claim follows its rights check within minutes);
- ``new_without_claim``: of those, the beneficiaries the account had never read before (no care
  relationship before, none after: the insider's signature).

With ``span_days: N`` (count quantities only) the value is a rolling sum over the current day
and the N - 1 days before it, judged against the history of such sums, leaving out the last
N - 1 of them (they overlap the current span, so a slow attack would raise its own bar).

Threshold for an entity on a given day (fires while today's value exceeds it)::

    own  = own_factor  * max(p95(own days), median + 3 * 1.4826 * MAD)   if >= min_history days
    peer = peer_factor * quantile(peer_quantile, peers' days)             if >= 30 peer days
    threshold = max(min_value, own, peer)

With neither own nor peer history the rule is still learning and does not fire. Own history
holds the last ``history_days`` active days (days with at least one read); peers' history holds
the last 20,000 account-days of the peer group within ``history_days``.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Sequence
from statistics import median
from typing import Any

from rempart.detect.expr import (
    _utc_offset_for_hour,
    resolve_field,
    utc_offset,
)
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import CompiledRule, EventContext, Fire
from rempart.events import Event

PEER_MIN_DAYS = 30
PEER_CAP = 20000
_INF = float("inf")


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


class _Hist:
    """One rule's learning for one key: its past days' values and today's cached threshold."""

    __slots__ = ("days", "history", "recent", "recent_sum", "thr")

    def __init__(self) -> None:
        #: Values of the last active days (float32: 4 bytes a day).
        self.history = array("f")
        self.thr: tuple[float, float | None, float | None] | None = None
        #: Active days seen so far (the first one is a warm-up for novelty quantities).
        self.days = 0
        #: (day, value) of the previous days inside the rule's span (``span_days`` > 1 only).
        self.recent: list[tuple[int, float]] = []
        #: ``sum`` of the values in ``recent`` (they only change when the day rolls).
        self.recent_sum: float = 0


#: ``_Day.day`` while the sides of a key disagree (never a real day: the fast path misses).
_SPLIT = -(1 << 62)
#: ``_Day.bar_n`` while the per-read bars are unknown (``n <= -inf`` is always false).
_NO_BAR = float("-inf")


class _View:
    """One side's day of one key: its day, peer group, today's beneficiaries and counts."""

    __slots__ = ("day", "group", "new", "orph_all", "orph_new", "today")

    def __init__(self, day: int, group: str | None, today: set[int], new: int):
        self.day = day
        self.group = group
        self.today = today
        self.new = new
        #: Reads whose claim window passed without a claim, all and never-seen-before ones.
        self.orph_all = 0
        self.orph_new = 0


class _Day(_View):
    """Today's reads of one key, shared by every baseline rule of a ``_ReadDays`` group.

    While every side of the group agrees on the key's day (``views`` is None) this object is
    the one view they all read. A claim-pairing side also sees claims, and a claim of another
    day rolls its day alone: the sides then keep their own views (``views``, by side; None for
    a side that has not seen the key yet) and ``day`` is ``_SPLIT`` until they agree again.
    """

    __slots__ = ("bar_n", "bar_new", "bar_orph", "hists", "pending", "views")

    def __init__(self, day: int, group: str | None, members: int):
        super().__init__(day, group, set(), 0)
        #: (time, novel) of reads awaiting a claim (claim-pairing side only).
        self.pending: deque[tuple[float, bool]] = deque()
        #: Each member rule's learning for this key, by member index.
        self.hists = [_Hist() for _ in range(members)]
        self.views: list[_View | None] | None = None
        #: No member can fire while today's distinct, new and orphaned counts stay at or under
        #: these (derived from the members' cached thresholds; ``_NO_BAR``: unknown).
        self.bar_n: float = _NO_BAR
        self.bar_new: float = 0
        self.bar_orph: float = 0


class _ReadDays:
    """Per-key day state shared by baseline rules that see the same reads.

    Rules with the same filter, group-by and peer group hold the same set of today's
    beneficiaries: that set, the novelty count and the pending claims are kept once here,
    updated once per event (``step``), and each member keeps only its own history and
    threshold (``_Day.hists``). Claim-pairing members (one claim window) form one side, the
    others another; the pairing side is also offered claims, which may roll its day alone.
    """

    __slots__ = (
        "_state",
        "barred",
        "claim_action",
        "claim_window",
        "day",
        "day_from",
        "day_to",
        "fast",
        "fast_by_side",
        "group_of",
        "key_of",
        "members",
        "orders",
        "out",
        "pair_side",
        "pairs_claims",
        "seq",
        "sides",
    )

    def __init__(self, first: BaselineRule):
        self.members: list[BaselineRule] = []
        #: (member, index, only_new, qcode) per member, for the per-read fast path.
        self.fast: tuple[tuple[BaselineRule, int, bool, int], ...] = ()
        self.fast_by_side: list[tuple[tuple[BaselineRule, int, bool, int], ...]] = []
        self._state: dict[str, _Day] = {}
        self.key_of = first.key_of
        self.group_of = first.group_of
        self.pairs_claims = False
        self.claim_action = ""
        self.claim_window = first.spec.claim_window
        #: Number of sides (1, or 2: the rules that pair claims and the ones that do not).
        self.sides = 0
        #: Side of the claim-pairing members (-1: none).
        self.pair_side = -1
        #: Whether every member's quantity is a count (the per-read bars apply).
        self.barred = True
        #: With two sides, the keys in the order each side first saw them (for ``dump``).
        self.orders: list[dict[str, None]] | None = None
        #: Local day of the times in [day_from, day_to) (one UTC hour at most: one offset).
        self.day = 0
        self.day_from = 0.0
        self.day_to = 0.0
        self.seq = -1
        #: Each member's fire for the current event, by member index (None: none fires).
        self.out: list[Fire | None] | None = None

    @property
    def state(self) -> dict[str, _Day]:
        return self._state

    @state.setter
    def state(self, value: dict[str, _Day]) -> None:
        self._state = value
        if self.orders is not None:
            self.orders = [{} for _ in range(self.sides)]

    def add(self, rule: BaselineRule) -> None:
        rule.index = len(self.members)
        rule.tracker = self
        self.members.append(rule)
        if rule.pairs_claims:
            self.pairs_claims = True
            self.claim_window = rule.spec.claim_window
            self.claim_action = rule.also or ""
        kinds = sorted({m.pairs_claims for m in self.members})
        self.sides = len(kinds)
        for m in self.members:
            m.side = kinds.index(m.pairs_claims)
        self.pair_side = kinds.index(True) if self.pairs_claims else -1
        self.orders = [{} for _ in kinds] if self.sides > 1 else None
        self.fast = tuple((m, m.index, m.only_new, m.qcode) for m in self.members)
        self.fast_by_side = [
            tuple(f for f in self.fast if f[0].side == s) for s in range(self.sides)
        ]
        self.barred = all(m.qcode <= 2 for m in self.members)

    def step(self, ev: Event, ctx: EventContext) -> list[Fire | None] | None:
        """Update the key's day state once for this event and judge every member; the
        engine's single entry for the whole group (``observe``): fires by member index, or
        None."""
        self.seq = ctx.seq
        self.out = None
        key = self.key_of(ev)
        if key is None:
            return None
        ts = ev.ts
        if ctx.day_ts != ts:
            if not self.day_from <= ts < self.day_to:
                self._day_of(ts)
            ctx.day = self.day
            ctx.day_ts = ts
        day = ctx.day
        st = self._state.get(key)
        if st is None or st.day != day:
            self._step_roll(ev, ctx, key, st, day)
            return self.out
        # Fast path: every side on this day already (no roll, one view).
        if self.pairs_claims:
            pending = st.pending
            if pending and pending[0][0] < ts - self.claim_window:
                self._expire(key, st, st, ts)
            if ev.action == self.claim_action:
                if pending:
                    pending.pop()  # a claim follows its rights check: pair with the latest
                return self.out
            bh = ctx.bh
            if bh is None or not ev.categories:
                return self.out
            novel = ctx.novel
            pending.append((ts, novel))
        else:
            bh = ctx.bh
            if bh is None or not ev.categories:
                return self.out
            novel = ctx.novel
        today = st.today
        if bh not in today:
            today.add(bh)
            if novel:
                st.new += 1
        if len(today) <= st.bar_n and st.new <= st.bar_new and st.orph_new <= st.bar_orph:
            return self.out
        self._judge_members(key, st, st.hists, ts, -1, self.fast)
        if st.bar_n == _NO_BAR and self.barred:
            self._set_bars(st)
        return self.out

    observe = step

    def _day_of(self, ts: float) -> None:
        """Set ``day`` to ``local_day(ts)`` and [day_from, day_to) to the times that share it
        and its UTC hour (hence its UTC offset)."""
        t = int(ts)
        hour = t // 3600
        offset = _utc_offset_for_hour(hour)
        day = (t + offset) // 86400
        self.day = day
        # (int() truncates: times before 1970 are not cached.)
        self.day_from = float(max(0, hour * 3600, day * 86400 - offset))
        self.day_to = float(min(hour * 3600 + 3600, (day + 1) * 86400 - offset))

    def _expire(self, key: str, st: _Day, v: _View, ts: float) -> None:
        """Count the reads whose claim window passed as orphans of their read's day (``v``,
        the pairing side's view) and judge that day before any roll."""
        pending = st.pending
        limit = ts - self.claim_window
        exp_all = exp_new = 0
        while pending and pending[0][0] < limit:
            _t, novel = pending.popleft()
            exp_all += 1
            if novel:
                exp_new += 1
        if exp_all:
            v.orph_all += exp_all
            v.orph_new += exp_new
            self._judge_members(key, v, st.hists, ts, exp_new, self.fast_by_side[self.pair_side])

    def _step_roll(self, ev: Event, ctx: EventContext, key: str, st: _Day | None, day: int) -> None:
        """``step`` for a new key, a new day, or sides that disagree."""
        claim = self.pairs_claims and ev.action == self.claim_action
        split = claim and self.sides > 1
        if st is None:
            group = self.group_of(ev) if self.group_of is not None else None
            st = self._state[key] = _Day(day, None if group is None else str(group), 0)
            st.hists = [_Hist() for _ in self.members]
            if split:  # only the pairing side has seen this key
                st.views = [None] * self.sides
                st.views[self.pair_side] = _View(day, st.group, set(), 0)
                st.day = _SPLIT
            if self.orders is not None:
                for s, order in enumerate(self.orders):
                    if not split or s == self.pair_side:
                        order[key] = None
        if st.views is None and not split:
            self._step_together(ev, ctx, key, st, day)
            return
        if st.views is None:  # a claim of another day: the pairing side rolls alone
            both = _View(st.day, st.group, st.today, st.new)
            both.orph_all, both.orph_new = st.orph_all, st.orph_new
            views: list[_View | None] = [both] * self.sides
        else:
            views = st.views
        ts = ev.ts
        ps = self.pair_side
        vp = views[ps] if ps >= 0 else None
        if vp is not None and st.pending and st.pending[0][0] < ts - self.claim_window:
            self._expire(key, st, vp, ts)
        for s in range(self.sides):
            if claim and s != ps:
                continue
            v = views[s]
            if v is None:
                group = self.group_of(ev) if self.group_of is not None else None
                v = _View(day, None if group is None else str(group), set(), 0)
                if self.orders is not None:
                    self.orders[s][key] = None
            elif v.day != day:
                for m, index, _n, _q in self.fast_by_side[s]:
                    m._roll(v, st.hists[index], day)
                v = _View(day, v.group, set(), 0)
            views[s] = v
        if claim:
            if st.pending:
                st.pending.pop()
        else:
            bh = ctx.bh
            if bh is not None and ev.categories:
                novel = ctx.novel
                added: list[_View] = []
                for v in views:
                    if v is not None and not any(v is a for a in added):
                        added.append(v)
                        if bh not in v.today:
                            v.today.add(bh)
                            if novel:
                                v.new += 1
                if ps >= 0:
                    st.pending.append((ts, novel))
                for s, v in enumerate(views):
                    if v is not None:
                        self._judge_members(key, v, st.hists, ts, -1, self.fast_by_side[s])
        self._settle(st, views)

    def _settle(self, st: _Day, views: list[_View | None]) -> None:
        """Keep the sides' views apart, or as one (``st`` itself) again once they agree."""
        first = views[0]
        ps = self.pair_side
        if first is not None and all(
            v is not None
            and v.day == first.day
            and v.group == first.group
            and v.new == first.new
            and len(v.today) == len(first.today)
            and v.today == first.today
            for v in views[1:]
        ):
            vp = views[ps] if ps >= 0 else first
            assert vp is not None
            st.views = None
            st.day, st.group, st.today, st.new = first.day, first.group, first.today, first.new
            st.orph_all, st.orph_new = vp.orph_all, vp.orph_new
        else:
            st.views = views
            st.day = _SPLIT
            st.today = set()
        st.bar_n = _NO_BAR

    def _step_together(self, ev: Event, ctx: EventContext, key: str, st: _Day, day: int) -> None:
        """``step`` when every side rolls with this event (all sides see it)."""
        ts = ev.ts
        if self.pairs_claims and st.pending and st.pending[0][0] < ts - self.claim_window:
            self._expire(key, st, st, ts)
        if day != st.day:
            for m, index, _n, _q in self.fast:
                m._roll(st, st.hists[index], day)
            st.day = day
            st.today = set()
            st.new = 0
            st.orph_all = st.orph_new = 0
            st.bar_n = _NO_BAR
        if self.pairs_claims and ev.action == self.claim_action:
            if st.pending:
                st.pending.pop()
            return
        bh = ctx.bh
        if bh is None or not ev.categories:
            return
        if bh not in st.today:
            st.today.add(bh)
            if ctx.novel:
                st.new += 1
        if self.pairs_claims:
            st.pending.append((ts, ctx.novel))
        self._judge_members(key, st, st.hists, ts, -1, self.fast)
        if self.barred:
            self._set_bars(st)

    def _set_bars(self, st: _Day) -> None:
        """Derive the per-read bars from the members' cached thresholds (exact: a count plus
        an integral span sum is at or under a threshold iff the count is at or under the
        threshold's floor minus that sum)."""
        bars = [_INF, _INF, _INF]
        for _m, index, _n, q in self.fast:
            h = st.hists[index]
            if h.thr is None:
                return
            thr = h.thr[0]
            if thr != thr:  # NaN: never under it
                return
            if thr == _INF:
                continue
            bar = math.floor(thr)
            if h.recent:
                if h.recent_sum != int(h.recent_sum):
                    return
                bar -= int(h.recent_sum)
            if bar < bars[q]:
                bars[q] = bar
        st.bar_n, st.bar_new, st.bar_orph = bars

    def _judge_members(
        self,
        key: str,
        v: _View,
        hists: list[_Hist],
        ts: float,
        exp_new: int,
        fast: tuple[tuple[BaselineRule, int, bool, int], ...],
    ) -> None:
        """Judge the members of ``fast`` on view ``v`` (``exp_new`` < 0), or after orphans
        expired (``exp_new`` of them never seen before) those whose quantity they changed;
        fires go to ``out``."""
        n = len(v.today)
        for m, index, only_new, q in fast:
            if exp_new == 0 and only_new:
                continue
            h = hists[index]
            thr = h.thr
            if thr is not None:
                # Fast path: most reads leave the key under its (cached) threshold.
                val: float = (
                    n if q == 0 else v.new if q == 1 else v.orph_new if q == 2 else m._day_value(v)
                )
                if h.recent:
                    val += h.recent_sum
                if val <= thr[0]:
                    continue
            fire = m._judge(key, v, h, ts)
            if fire is not None:
                out = self.out
                if out is None:
                    out = self.out = [None] * len(self.members)
                out[index] = fire


def share_read_days(rules: Sequence[CompiledRule]) -> None:
    """Group baseline rules that see the same reads so they share their per-key day state.

    Rules with the same filter, group-by and peer group share it; claim-pairing ones (of one
    claim window) join the others as a second side when the others' filter never takes claims.
    """
    sides: dict[tuple[Any, ...], list[BaselineRule]] = {}
    for rule in rules:
        if isinstance(rule, BaselineRule):
            s = rule.spec
            window = s.claim_window if rule.pairs_claims else None
            sig = (s.filter, tuple(s.group_by), s.peer_group, rule.pairs_claims, window)
            sides.setdefault(sig, []).append(rule)
    partner: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for sig, members in sides.items():
        plain = members[0].actions
        if sig[3] or plain is None:
            continue
        for other, pairing in sides.items():
            claim = pairing[0].also
            if (
                other[:3] == sig[:3]
                and other[3]
                and other not in partner.values()
                and claim is not None
                and claim not in plain
            ):
                partner[sig] = other
                break
    joined = set(partner.values())
    groups = [
        members + (sides[partner[sig]] if sig in partner else [])
        for sig, members in sides.items()
        if sig not in joined
    ]
    position = {id(r): i for i, r in enumerate(rules)}
    for members in groups:
        members.sort(key=lambda r: position[id(r)])
        tracker = _ReadDays(members[0])
        for rule in members:
            tracker.add(rule)


class BaselineRule(CompiledRule):
    __slots__ = (
        "group_of",
        "index",
        "only_new",
        "pairs_claims",
        "peer_cache",
        "peers",
        "qcode",
        "quantity",
        "side",
        "tracker",
    )

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.quantity = spec.quantity or "distinct_beneficiaries"
        self.pairs_claims = self.quantity in ("reads_without_claim", "new_without_claim")
        self.only_new = self.quantity == "new_without_claim"
        #: Quantity as a small int for the per-read fast path (3: any other, computed).
        self.qcode = {"distinct_beneficiaries": 0, "new_beneficiaries": 1}.get(self.quantity, 3)
        if self.only_new:
            self.qcode = 2
        if self.pairs_claims:
            self.offer_also("claim.create")
        resolved = resolve_field(spec.peer_group) if spec.peer_group else None
        self.group_of = resolved[1] if resolved else None
        self.peers: dict[str, deque[tuple[int, float]]] = {}
        self.peer_cache: dict[tuple[str, int], float | None] = {}
        self.index = 0
        #: Side of its ``_ReadDays`` (claim-pairing rules and the others may share one).
        self.side = 0
        self.tracker = _ReadDays(self)
        self.tracker.add(self)

    # -- day handling ---------------------------------------------------------------------
    def _value(self, st: _View, h: _Hist) -> float:
        """Today's value, plus the previous days' inside ``span_days`` (a rolling sum)."""
        value = self._day_value(st)
        if h.recent:
            value += h.recent_sum
        return value

    def _day_value(self, st: _View) -> float:
        q = self.quantity
        if q == "distinct_beneficiaries":
            return float(len(st.today))
        if q == "new_beneficiaries":
            return float(st.new)
        if q == "new_without_claim":
            return float(st.orph_new)
        if q == "novelty_share":
            n = len(st.today)
            return st.new / n if n >= self.spec.min_reads else 0.0
        return float(st.orph_all)

    def _orphans(self, st: _View) -> int:
        if not self.pairs_claims:
            return 0
        return st.orph_new if self.only_new else st.orph_all

    def _roll(self, st: _View, h: _Hist, day: int) -> None:
        """Close ``st.day`` for this rule (the caller then resets the shared day state)."""
        if st.today or self._orphans(st):
            h.days += 1
            value = self._value(st, h)
            novelty = self.quantity in ("new_beneficiaries", "novelty_share", "new_without_claim")
            # Novelty: the first day sees everything as new. Spans: a partial span is no usual.
            warm_up = (novelty and h.days == 1) or h.days < self.spec.span_days
            if not warm_up and (
                self.quantity != "novelty_share" or len(st.today) >= self.spec.min_reads
            ):
                h.history.append(value)
                if len(h.history) > self.spec.history_days:
                    del h.history[0]
                if st.group is not None:
                    pool = self.peers.get(st.group)
                    if pool is None:
                        pool = self.peers[st.group] = deque(maxlen=PEER_CAP)
                    pool.append((st.day, value))
        if self.spec.span_days > 1:
            h.recent.append((st.day, self._day_value(st)))
            oldest = day - self.spec.span_days
            h.recent = [(d, v) for d, v in h.recent if d > oldest]
            h.recent_sum = sum(v for _d, v in h.recent)
        h.thr = None

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
                value = _quantile(vals, self.spec.peer_quantile)
        if len(self.peer_cache) > 4096:
            self.peer_cache.clear()
        self.peer_cache[ck] = value
        return value

    def _threshold(self, st: _View, h: _Hist) -> tuple[float, float | None, float | None]:
        if h.thr is None:
            own: float | None = None
            hist = h.history
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
            h.thr = (thr, own, peer)
        return h.thr

    # -- events ---------------------------------------------------------------------------
    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        tracker = self.tracker
        if tracker.seq != ctx.seq:
            tracker.step(ev, ctx)
        out = tracker.out
        return out[self.index] if out is not None else None

    def _judge(self, key: str, st: _View, h: _Hist, ts: float) -> Fire | None:
        value = self._value(st, h)
        thr, own, peer = h.thr if h.thr is not None else self._threshold(st, h)
        if value <= thr:
            return None
        history = list(h.history)
        today, new = len(st.today), st.new
        return Fire(
            key,
            ts,
            lambda: self._explain(key, today, new, history, value, own, peer),
            {
                "value": value,
                "threshold": thr,
                "distinct_today": float(today),
                "new_today": float(new),
            },
            st.today,
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

    @property
    def state(self) -> dict[str, _Day]:
        return self.tracker.state

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        return  # the per-key state lives in the shared ``_ReadDays``

    def dump(self) -> dict[str, Any]:
        """Per key: [day, group, today, new, orphans, pending, history, days, recent]."""
        i, side, tracker = self.index, self.side, self.tracker
        state = tracker.state
        keys: dict[str, list[Any]] = {}
        for k in tracker.orders[side] if tracker.orders is not None else state:
            st = state[k]
            v = st if st.views is None else st.views[side]
            if v is None:
                continue
            h = st.hists[i]
            keys[k] = [
                v.day,
                v.group,
                sorted(v.today),
                v.new,
                self._orphans(v),
                [[t, n] for t, n in st.pending] if self.pairs_claims else [],
                h.history.tolist(),
                h.days,
                [[d, x] for d, x in h.recent],
            ]
        peers = {g: [[d, v] for d, v in pool] for g, pool in self.peers.items()}
        # Peer thresholds are fixed when first needed on a day: a restart must not recompute
        # them from a pool that has grown since (it would move today's bar).
        cache = [[g, d, v] for (g, d), v in self.peer_cache.items()]
        return {"keys": keys, "peers": peers, "peer_cache": cache}

    def load(self, data: dict[str, Any]) -> None:
        """Restore this rule's keys (shared day state: the first member of a side loaded sets
        that side's view; with two sides the views stay apart until the key's next event)."""
        tracker = self.tracker
        side = self.side
        for k, item in data["keys"].items():
            day, group, today, new, orphans, pending, history, days = item[:8]
            st = tracker.state.get(k)
            first = st is None
            if st is None:
                st = tracker.state[k] = _Day(day, group, len(tracker.members))
                if tracker.orders is not None:
                    st.views = [None] * tracker.sides
                    st.day = _SPLIT
            v: _View | None = st if st.views is None else st.views[side]
            if v is None:
                assert st.views is not None and tracker.orders is not None
                v = st.views[side] = _View(day, group, set(), 0)
                tracker.orders[side][k] = None
                first = True
            if first:
                v.today = set(today)
                v.new = new
                if self.pairs_claims:
                    st.pending = deque((t, bool(n)) for t, n in pending)
            if self.pairs_claims:
                if self.only_new:
                    v.orph_new = orphans
                else:
                    v.orph_all = orphans
            h = st.hists[self.index]
            h.recent = [(d, x) for d, x in (item[8] if len(item) > 8 else [])]
            h.recent_sum = sum(x for _d, x in h.recent)
            h.days = days
            h.history = array("f", history)
            h.thr = None
            st.bar_n = _NO_BAR
        self.peers = {
            g: deque(((d, v) for d, v in pool), maxlen=PEER_CAP)
            for g, pool in data["peers"].items()
        }
        self.peer_cache = {(g, d): v for g, d, v in data.get("peer_cache", [])}
