"""Per-key day state of ``baseline`` rules, shared by the rules that see the same reads.

:class:`_ReadDays` keeps, per key (account), today's beneficiaries, the count of those never
read before and the reads awaiting a claim once for a group of rules, and each rule's own
history (:class:`_Hist`); the rules' logic (values, thresholds, explanations) lives in
:mod:`rempart.detect.baseline`.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Any, Final

from rempart.detect.expr import local_day_span
from rempart.detect.windows import CompiledRule, EventContext, Fire
from rempart.events import Event

if TYPE_CHECKING:
    from rempart.detect.baseline import BaselineRule

_INF: Final = float("inf")


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
        self.recent_sum: float = 0.0


#: ``out`` before any member fired. Typed as the union: ``self.out = None`` would let mypyc
#: narrow ``out`` to None for the rest of ``observe``, though the judging methods set it.
_NO_FIRES: Final[list[Fire | None] | None] = None

#: ``_Day.day`` while the sides of a key disagree (never a real day: the fast path misses).
_SPLIT: Final = -(1 << 62)
#: ``_Day.bar_n`` while the per-read bars are unknown (``n <= -inf`` is always false).
_NO_BAR: Final = float("-inf")


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

    __slots__ = (
        "bar_n",
        "bar_new",
        "bar_orph",
        "hists",
        "late",
        "late_novel",
        "oldest",
        "pending",
        "views",
    )

    def __init__(self, day: int, group: str | None, members: int):
        super().__init__(day, group, set(), 0)
        #: The reads awaiting a claim (claim-pairing side only) are ``pending``, (time, novel)
        #: oldest first, then the latest one, held in the fields ``late`` (its time object,
        #: None when there is none) and ``late_novel``: a claim pairs with the latest read,
        #: and most reads are claimed before the next one, so the usual read and claim touch
        #: neither the list nor a tuple (see :meth:`reads`). ``pending`` is a list (a handful
        #: of reads within the claim window; compiled list operations are cheaper than a
        #: deque's generic method calls).
        self.pending: list[tuple[float, bool]] = []
        self.late: Any = None
        self.late_novel = False
        #: The time of the oldest read awaiting a claim (inf when none): the per-event expiry
        #: check reads this field, not the oldest read's tuple and float, objects an hour old
        #: and out of cache.
        self.oldest = _INF
        #: Each member rule's learning for this key, by member index.
        self.hists = [_Hist() for _ in range(members)]
        self.views: list[_View | None] | None = None
        #: No member can fire while today's distinct, new and orphaned counts stay at or under
        #: these (derived from the members' cached thresholds; ``_NO_BAR``: unknown).
        self.bar_n: float = _NO_BAR
        self.bar_new: float = 0.0
        self.bar_orph: float = 0.0

    def add_pending(self, t: Any, ts: float, novel: bool) -> None:
        """A read now awaiting a claim: ``t`` is the time object stored (the engine's
        ``EventContext.ts_box``, not a new float), ``ts`` its value."""
        if self.late is not None:
            self.pending.append((self.late, self.late_novel))
        elif not self.pending:
            self.oldest = ts
        self.late = t
        self.late_novel = novel

    def pair_claim(self) -> None:
        """A claim follows its rights check: it pairs with the latest pending read, if any."""
        if self.late is not None:
            self.late = None
            if not self.pending:
                self.oldest = _INF
            return
        pending = self.pending
        if pending:
            del pending[-1]
            if not pending:
                self.oldest = _INF

    def reads(self) -> list[tuple[float, bool]]:
        """Every read awaiting a claim, (time, novel), oldest first."""
        if self.late is None:
            return list(self.pending)
        return [*self.pending, (self.late, self.late_novel)]

    def set_reads(self, reads: list[tuple[float, bool]]) -> None:
        """Replace the reads awaiting a claim (oldest first; restoring a checkpoint)."""
        self.pending = list(reads)
        self.late = None
        self.oldest = self.pending[0][0] if self.pending else _INF


class _ReadDays:
    """Per-key day state shared by baseline rules that see the same reads.

    Rules with the same filter, group-by and peer group hold the same set of today's
    beneficiaries: that set, the novelty count and the pending claims are kept once here,
    updated once per event (``observe``), and each member keeps only its own history and
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
        "keyed",
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
        #: The first member: its ``key`` is the group's (members share their group-by).
        self.keyed: CompiledRule = first
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

    def observe(self, ev: Event, ctx: EventContext) -> list[Fire | None] | None:
        """Update the key's day state once for this event and judge every member; the
        engine's single entry for the whole group: fires by member index, or None."""
        self.seq = ctx.seq
        self.out = _NO_FIRES
        key = self.keyed.key(ev)
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
            if st.oldest < ts - self.claim_window:
                self._expire(key, st, st, ts)
            if ev.action == self.claim_action:
                st.pair_claim()
                return self.out
            bh: Any = ctx.bh  # the engine's int object, not a new one per set operation
            if bh is None or not ev.categories:
                return self.out
            novel = ctx.novel
            st.add_pending(ctx.ts_box, ts, novel)
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
        # float(...): an int compared with a float is a generic comparison in compiled code.
        if (
            float(len(today)) <= st.bar_n
            and float(st.new) <= st.bar_new
            and float(st.orph_new) <= st.bar_orph
        ):
            return self.out
        self._judge_members(key, st, st.hists, ts, -1, self.fast)
        if st.bar_n == _NO_BAR and self.barred:
            self._set_bars(st)
        return self.out

    def _day_of(self, ts: float) -> None:
        """Set ``day`` to ``local_day(ts)`` and [day_from, day_to) to the times that share it
        and its UTC hour (hence its UTC offset)."""
        self.day, self.day_from, self.day_to = local_day_span(ts)

    def _expire(self, key: str, st: _Day, v: _View, ts: float) -> None:
        """Count the reads whose claim window passed as orphans of their read's day (``v``,
        the pairing side's view) and judge that day before any roll."""
        pending = st.pending
        limit = ts - self.claim_window
        exp_all = exp_new = 0
        while exp_all < len(pending) and pending[exp_all][0] < limit:
            if pending[exp_all][1]:
                exp_new += 1
            exp_all += 1
        if exp_all:
            del pending[:exp_all]
        late = st.late
        if not pending and late is not None:
            late_ts: float = late
            if late_ts < limit:
                if st.late_novel:
                    exp_new += 1
                exp_all += 1
                late = st.late = None
        if exp_all:
            if pending:
                st.oldest = pending[0][0]
            elif late is not None:
                st.oldest = late
            else:
                st.oldest = _INF
            v.orph_all += exp_all
            v.orph_new += exp_new
            self._judge_members(key, v, st.hists, ts, exp_new, self.fast_by_side[self.pair_side])

    def _group(self, ev: Event) -> str | None:
        """The event's peer group (None without one)."""
        group = self.group_of(ev) if self.group_of is not None else None
        return None if group is None else str(group)

    def _step_roll(self, ev: Event, ctx: EventContext, key: str, st: _Day | None, day: int) -> None:
        """``observe`` for a new key, a new day, or sides that disagree."""
        claim = self.pairs_claims and ev.action == self.claim_action
        split = claim and self.sides > 1
        if st is None:
            st = self._state[key] = _Day(day, self._group(ev), len(self.members))
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
        if vp is not None and st.oldest < ts - self.claim_window:
            self._expire(key, st, vp, ts)
        for s in range(self.sides):
            if claim and s != ps:
                continue
            v = views[s]
            if v is None:
                v = _View(day, self._group(ev), set(), 0)
                if self.orders is not None:
                    self.orders[s][key] = None
            elif v.day != day:
                for m, index, _n, _q in self.fast_by_side[s]:
                    m._roll(v, st.hists[index], day)
                v = _View(day, v.group, set(), 0)
            views[s] = v
        if claim:
            st.pair_claim()
        else:
            bh: Any = ctx.bh
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
                    st.add_pending(ctx.ts_box, ts, novel)
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
        """``observe`` when every side rolls with this event (all sides see it)."""
        ts = ev.ts
        if self.pairs_claims and st.oldest < ts - self.claim_window:
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
            st.pair_claim()
            return
        bh: Any = ctx.bh
        if bh is None or not ev.categories:
            return
        if bh not in st.today:
            st.today.add(bh)
            if ctx.novel:
                st.new += 1
        if self.pairs_claims:
            st.add_pending(ctx.ts_box, ts, ctx.novel)
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
