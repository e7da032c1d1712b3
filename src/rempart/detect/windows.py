"""Runtime of the windowed rule types: match, event_count, value_count, temporal_ordered,
new_value and cadence. Each compiled rule keeps its state per group-by key and returns a
``Fire`` when its condition holds for the event just seen (events arrive in event-time order:
the engine reorders them first).

State is kept in plain slotted objects and dumped to msgspec-friendly primitives for
checkpoints (see :mod:`rempart.detect.store`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from operator import attrgetter
from typing import Any, ClassVar, Final

from mypy_extensions import mypyc_attr

from rempart.detect.expr import (
    BoolOp,
    ByActionOutcome,
    Node,
    Pred,
    Predicate,
    Test,
    compile_filter_node,
    parse,
    required_actions,
    resolve_field,
    specialized,
)
from rempart.detect.spec import RuleSpec
from rempart.events import Event

EVIDENCE_CAP: Final = 20


class Fire:
    """One firing of a rule for one key.

    Firing repeats on every event while a condition holds, so a ``Fire`` is cheap: ``text`` may
    be a callable rendered only when someone reads the alert, and ``exposed`` / ``related`` are
    live views of the rule's state that the engine copies only when it creates an alert.
    """

    __slots__ = ("exposed", "first_seen", "key", "metrics", "period", "related", "text")

    def __init__(
        self,
        key: str,
        first_seen: float,
        text: str | Callable[[], str],
        metrics: dict[str, float],
        exposed: Collection[int] | None = None,
        related: Collection[str] | None = None,
        period: int | None = None,
    ):
        self.key = key
        self.first_seen = first_seen
        self.text = text
        self.metrics = metrics
        self.exposed = exposed
        #: Other entities involved (accounts tried from an IP, accounts of a campaign).
        self.related = related
        #: The period judged, for rules that judge one (a baseline rule's local day): as a
        #: signal, the fire counts once per entity and period, whenever it comes.
        self.period = period

    def render(self) -> str:
        text = self.text
        return text if isinstance(text, str) else text()


class EventContext:
    """Per-event facts computed once by the engine and shared by every rule."""

    __slots__ = ("bh", "day", "day_ts", "novel", "seq", "ts_box")

    def __init__(self) -> None:
        #: Number of the event being processed (memo key for state shared between rules).
        self.seq = 0
        self.bh: int | None = None
        self.novel = False
        #: Local day number of ``day_ts`` (memo shared by the baseline rules).
        self.day = 0
        self.day_ts = -1.0
        #: The event's time as a float object, made once: rules that store the time (windows,
        #: pending reads) store this one (compiled, each would box a new float).
        self.ts_box: Any = 0.0


def key_getter(fields: tuple[str, ...]) -> Callable[[Event], str | None]:
    getters = []
    types = []
    for f in fields:
        resolved = resolve_field(f)
        assert resolved is not None
        getters.append(resolved[1])
        types.append(resolved[2])
    if len(getters) == 1:
        g = getters[0]
        if types[0] is str:
            return g  # already text (or None): no wrapper on the hot path

        def one(e: Event) -> str | None:
            v = g(e)
            return None if v is None else str(v)

        return one

    def many(e: Event) -> str | None:
        vals = [g(e) for g in getters]
        if any(v is None for v in vals):
            return None
        return "|".join(str(v) for v in vals)

    return many


def by_user(fields: tuple[str, ...]) -> bool:
    """Whether ``key_getter(fields)`` is the account name as it is (``user_name``)."""
    resolved = resolve_field(fields[0]) if len(fields) == 1 else None
    return resolved is not None and resolved[0] == "user_name"


def human_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    if s < 2 * 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m:02d}" if m else f"{h} h"
    return f"{s / 86400:.1f} days"


_FIELD_WORDS: Final = {
    "beneficiary_token": "distinct beneficiaries",
    "user_name": "distinct accounts",
    "source_ip": "distinct IP addresses",
    "user_agent": "distinct clients",
}


@mypyc_attr(allow_interpreted_subclasses=True)  # tests subclass it with reference rules
class CompiledRule:
    """Base of every runtime rule: filter, key, state per key."""

    __slots__ = ("actions", "also", "by_user", "key_of", "matches", "spec", "state")
    #: Whether ``observe`` reads ``ctx.novel`` (the engine's first-seen history).
    reads_first_seen: ClassVar[bool] = False

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        self.matches: Predicate
        self.actions: frozenset[str] | None
        self.matches, self.actions = compile_filter_node(spec.observed_filter())
        self.key_of = key_getter(spec.group_by)
        #: Grouped by account alone (most rules): ``key`` reads the attribute, no call.
        self.by_user = by_user(spec.group_by)
        self.state: dict[str, Any] = {}
        #: An action the rule is offered besides its filter's (claims, for claim pairing).
        self.also: str | None = None

    def key(self, ev: Event) -> str | None:
        """The event's key (``key_of``), without the call when it is the account."""
        return ev.user_name if self.by_user else self.key_of(ev)

    def use_care_history(self) -> None:
        """The first-seen history holds care relationships from outside the log (see
        ``Engine.add_care_history``); rules whose test depends on it adjust. Most do not."""

    def offer_also(self, action: str) -> None:
        """Offer this rule every event of ``action`` too, whatever its filter says."""
        self.also = action
        if self.actions is not None:
            self.actions = self.actions | {action}
        matches = self.matches
        self.matches = lambda e: e.action == action or matches(e)

    def filter_node(self) -> Node:
        """The full filter (action tests included) the engine specialises per action."""
        node = self.spec.observed_filter()
        if self.also is not None:
            return BoolOp("or", (Test("action", "==", self.also), node))
        return node

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        raise NotImplementedError

    def evict(self, now: float) -> int:
        """Drop state of keys idle for longer than the rule needs; returns how many."""
        return 0

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        return None


class MatchRule(CompiledRule):
    __slots__ = ()

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        exposed = {ctx.bh} if ctx.bh is not None and ev.discloses else None
        return Fire(key, ev.ts, f"{key}: {self.spec.title.lower()}", {}, exposed)


class EventCountRule(CompiledRule):
    __slots__ = ()

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        dq = self.state.get(key)
        if dq is None:
            dq = self.state[key] = deque()
        ts = ev.ts
        dq.append(ts)
        limit = ts - self.spec.window
        while dq[0] < limit:
            dq.popleft()
        n = len(dq)
        if n >= self.spec.threshold:
            text = (
                f"{key}: {n} {self.spec.title.lower()} events in "
                f"{human_duration(ts - dq[0])} (threshold {int(self.spec.threshold)} in "
                f"{human_duration(self.spec.window)})"
            )
            return Fire(key, dq[0], text, {"count": float(n)})
        return None

    def evict(self, now: float) -> int:
        limit = now - self.spec.window
        dead = [k for k, dq in self.state.items() if not dq or dq[-1] < limit]
        return drop_keys(self.state, dead)

    def dump(self) -> dict[str, Any]:
        return {k: list(dq) for k, dq in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: deque(v) for k, v in data.items()}


#: A window list is cut at its read position once this many entries (and half) are behind it.
_COMPACT: Final = 1024


def cut_front(items: list[Any], head: int, at: int) -> int:
    """The read position of a list used as a queue (``items[head:]`` are the live entries),
    after cutting the ones behind ``head`` once there are ``at`` of them and they are half the
    list: each entry is moved at most once, and a list's operations compile (a deque's do not).
    """
    if head >= at and 2 * head >= len(items):
        del items[:head]
        return 0
    return head


class _Distinct:
    """One key's window: times and values in arrival order, interleaved in one list (event
    ``i`` at ``items[2 * i]``, its value at ``items[2 * i + 1]``), from event ``head`` (no tuple
    per event, and one list where two parallel lists made a read touch two list objects and
    two list ends; a list and a read position: mypyc compiles a list's operations, not a
    deque's; the front is cut once half of the list is behind ``head``), and each value's
    latest time in the window, ``last``.

    ``last`` is kept only while the window holds at least as many events as the threshold
    needs: with fewer events there are fewer distinct values, so the rule cannot fire, and the
    dict (a set and, on expiry, a lookup and a delete per event) would be work for nothing. It
    is built from the list when the window reaches that size, and dropped when it shrinks
    below it: most accounts never read 40 records in 10 minutes.

    ``oldest`` and ``newest`` are the first and the last event's times (inf and -inf when
    empty): the per-event expiry check and the hourly eviction read these fields, not the float
    objects in the list, which are minutes old and out of cache on a large log."""

    __slots__ = ("head", "items", "last", "newest", "oldest")

    def __init__(self) -> None:
        self.last: dict[Any, float] | None = None
        self.items: list[Any] = []
        self.head = 0
        self.oldest = math.inf
        self.newest = -math.inf

    def events(self) -> list[tuple[float, Any]]:
        """(time, value) of the events in the window, oldest first."""
        items = self.items
        return [(items[i], items[i + 1]) for i in range(2 * self.head, len(items), 2)]

    def size(self) -> int:
        """The number of events in the window."""
        return (len(self.items) >> 1) - self.head

    def latest(self) -> dict[Any, float]:
        """Each value's latest time in the window (built from the list, as ``last`` holds)."""
        last: dict[Any, float] = {}
        items = self.items
        for i in range(2 * self.head, len(items), 2):
            last[items[i + 1]] = items[i]
        return last

    def cut(self, head: int) -> int:
        """``cut_front`` of the list, in events (two items each)."""
        return cut_front(self.items, 2 * head, 2 * _COMPACT) >> 1


class ValueCountRule(CompiledRule):
    __slots__ = ("is_beneficiary", "min_events", "threshold", "value_of", "window")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        assert spec.field is not None
        self.window = spec.window
        self.threshold = spec.threshold
        #: The fewest events in a window that can hold ``threshold`` distinct values.
        self.min_events = max(1, math.ceil(spec.threshold))
        self.is_beneficiary = spec.field == "beneficiary_token"
        resolved = resolve_field(spec.field)
        assert resolved is not None
        self.value_of = resolved[1]

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        value = ctx.bh if self.is_beneficiary else self.value_of(ev)
        if value is None:
            return None
        st: _Distinct | None = self.state.get(key)
        ts = ev.ts
        if st is None:
            st = self.state[key] = _Distinct()
            st.oldest = ts
        st.newest = ts
        ts_box: Any = ctx.ts_box
        items = st.items
        items.append(ts_box)
        items.append(value)
        limit = ts - self.window
        head = st.head
        last = st.last  # None while the window had fewer events than the threshold needs
        if last is not None:
            last[value] = ts_box
        if st.oldest < limit:
            while True:
                t: float = items[2 * head]
                if t >= limit:
                    break
                if last is not None:
                    v = items[2 * head + 1]
                    latest = last.get(v)
                    if latest is not None and latest == t:  # (typed: a float comparison)
                        del last[v]
                head += 1
            head = st.head = st.cut(head)
            st.oldest = items[2 * head]
        if (len(items) >> 1) - head < self.min_events:
            st.last = None  # too few events to fire: the list alone, no dict
            return None
        if last is None:
            last = st.last = st.latest()
        n = len(last)
        if n < self.threshold:
            return None
        first: float = items[2 * head]
        return self._fire(key, n, first, ts, last.keys(), "")

    def _fire(
        self, key: str, n: int, first: float, ts: float, values: Collection[Any], since: str
    ) -> Fire:
        """The firing for ``n`` distinct ``values`` of ``key`` from ``first`` to ``ts``
        (``since``: what the explanation adds after the duration)."""
        assert self.spec.field is not None
        what = _FIELD_WORDS.get(self.spec.field, f"distinct {self.spec.field}")
        verb = "read" if self.is_beneficiary else "saw"
        spec = self.spec

        def text() -> str:
            return (
                f"{key} {verb} {n:,} {what} in {human_duration(ts - first)}{since} "
                f"(threshold {int(spec.threshold)} in {human_duration(spec.window)})"
            )

        exposed = values if self.is_beneficiary else None
        related = values if self.spec.field == "user_name" else None
        return Fire(key, first, text, {"distinct": float(n)}, exposed, related)

    def evict(self, now: float) -> int:
        limit = now - self.window
        dead: list[str] = []
        for k, value in self.state.items():
            st: _Distinct = value  # typed: compiled attribute reads (``state`` holds Any)
            if st.newest < limit:
                dead.append(k)
        return drop_keys(self.state, dead)

    def dump(self) -> dict[str, Any]:
        return {k: [[t, v] for t, v in st.events()] for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {}
        for k, items in data.items():
            st = _Distinct()
            for t, v in items:
                st.items.append(t)
                st.items.append(v)
            if st.items:
                st.oldest, st.newest = st.items[0], st.items[-2]
            if st.size() >= self.min_events:
                st.last = st.latest()
            self.state[k] = st


def drop_keys(state: dict[str, Any], dead: list[str]) -> int:
    """Delete the ``dead`` keys of ``state`` (idle ones, found by an ``evict``); how many."""
    for k in dead:
        del state[k]
    return len(dead)


class RecentValues:
    """Value -> time of its latest event, in the order of those events (a value met again moves
    to the end), with the front expired in amortised constant time.

    A dict kept in that order could be expired from its front, but each value moved to the end
    or expired leaves a hole at its old place, and iterating from the front walks over every
    hole until the dict is next resized: under a stuffing attack (thousands of names in the
    window) that walk was most of the ``cleared_by`` rule's time. So the order is also kept in
    a queue of (time, value), whose stale entries (the value met again, cleared or expired
    since) are skipped when they reach the front."""

    __slots__ = ("order", "times")

    def __init__(self) -> None:
        self.times: dict[Any, float] = {}
        self.order: deque[tuple[float, Any]] = deque()

    @staticmethod
    def of(items: Iterable[Sequence[Any]]) -> RecentValues:
        """From ``(value, time)`` pairs in the order they were met (a checkpoint's)."""
        out = RecentValues()
        for value, t in items:
            out.touch(value, t)
        return out

    def touch(self, value: Any, ts: float) -> None:
        times = self.times
        times.pop(value, None)
        times[value] = ts
        self.order.append((ts, value))

    def discard(self, value: Any) -> None:
        self.times.pop(value, None)

    def expire(self, limit: float) -> None:
        """Drop the values met before ``limit``, from the front."""
        order = self.order
        times = self.times
        while order:
            t, value = order[0]
            if times.get(value) != t:
                order.popleft()  # stale
            elif t >= limit:
                return
            else:
                order.popleft()
                del times[value]

    def first(self) -> float:
        """The oldest time still held (the queue's front, once its stale entries are gone)."""
        order = self.order
        times = self.times
        while times.get(order[0][1]) != order[0][0]:
            order.popleft()
        return order[0][0]


class ClearedValueCountRule(ValueCountRule):
    """``value_count`` with ``cleared_by``: an event of the key matching ``cleared_by`` takes
    its value out of the count until the value comes again through the filter. Distributed
    credential stuffing fails on many accounts with one client string, and so do typos on a
    large portal's most common browser; a typo is followed by a success within seconds, a
    guess on someone else's account is not.

    One key's state is a dict of value -> time of its latest filter event, in that order (a
    value met again is moved to the end), so the front is the oldest and expires first. An
    event matching both the filter and ``cleared_by`` counts for the filter."""

    __slots__ = ("cleared_by", "tests")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        assert spec.cleared_by is not None
        self.cleared_by = spec.cleared_by
        #: (action, outcome) -> (the filter, ``cleared_by``), each True / False when decided
        #: by them, else a predicate.
        self.tests: ByActionOutcome[tuple[bool | Pred, bool | Pred]]
        self.tests = ByActionOutcome(self._tests)

    def _tests(self, action: str, outcome: str) -> tuple[bool | Pred, bool | Pred]:
        return (
            specialized(parse(self.spec.filter), action, outcome),
            specialized(parse(self.cleared_by), action, outcome),
        )

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        value = ctx.bh if self.is_beneficiary else self.value_of(ev)
        if value is None:
            return None
        counts, clears = self.tests.get(ev.action, ev.outcome)
        if not (counts is True or (counts is not False and counts.test(ev))):
            if clears is True or (clears is not False and clears.test(ev)):
                pending: RecentValues | None = self.state.get(key)
                if pending is not None:
                    pending.discard(value)
            return None
        ts = ev.ts
        got: RecentValues | None = self.state.get(key)
        if got is None:
            got = self.state[key] = RecentValues()
        last = got
        last.touch(value, ts)
        last.expire(ts - self.window)
        n = len(last.times)
        if n < self.threshold:
            return None
        since = f", none of them followed since by {self.cleared_by}"
        return self._fire(key, n, last.first(), ts, last.times.keys(), since)

    def evict(self, now: float) -> int:
        limit = now - self.window  # a key's times end with its latest one (``touch``)
        dead = []
        for k, value in self.state.items():
            st: RecentValues = value
            if not st.times or next(reversed(st.times.values())) < limit:
                dead.append(k)
        return drop_keys(self.state, dead)

    def dump(self) -> dict[str, Any]:
        return {k: [[t, v] for v, t in st.times.items()] for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: RecentValues.of((v, t) for t, v in items) for k, items in data.items()}


class _Step:
    """A step's count, distinct field and name (its filter: ``TemporalOrderedRule.step_tests``,
    compiled per action and outcome)."""

    __slots__ = ("count", "distinct_of", "name")

    def __init__(self, count: int, distinct: str | None, name: str):
        self.count = count
        self.name = name
        self.distinct_of: Callable[[Event], Any] | None = attrgetter(distinct) if distinct else None


class _Chain:
    """One key's progress along the steps: ``stage`` (0 while the first step's ``times`` within
    the window are collected), when the chain started, and the current step's count or
    distinct values ``seen``. Dumped as ``[stage, start, times, count, seen]``."""

    __slots__ = ("count", "seen", "stage", "start", "times")

    def __init__(
        self,
        stage: int = 0,
        start: float = 0.0,
        times: list[float] | None = None,
        count: int = 0,
        seen: list[Any] | None = None,
    ):
        self.stage = stage
        self.start = start
        self.times: list[float] = [] if times is None else times
        self.count = count
        self.seen: list[Any] = [] if seen is None else seen

    def dump(self) -> list[Any]:
        return [self.stage, self.start, self.times, self.count, self.seen]


class TemporalOrderedRule(CompiledRule):
    """Steps in order per key within ``window`` (Sigma ``temporal_ordered``).

    The first step may need ``count`` events within the window; once a step is complete the next
    one starts counting. The chain restarts when it grows older than the window. After the last
    step the rule keeps firing (the engine turns that into updates of one alert).
    """

    __slots__ = ("step_tests", "steps", "window")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.window: float = spec.window
        self.steps = [_Step(s.count, s.distinct, s.name) for s in spec.steps]
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
        #: (action, outcome) -> per step: True / False when decided by them, else a predicate.
        self.step_tests: ByActionOutcome[tuple[bool | Pred, ...]]
        self.step_tests = ByActionOutcome(self._step_tests)

    def _step_tests(self, action: str, outcome: str) -> tuple[bool | Pred, ...]:
        return tuple(specialized(parse(s.filter), action, outcome) for s in self.spec.steps)

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        tests = self.step_tests.get(ev.action, ev.outcome)
        st: _Chain | None = self.state.get(key)
        ts = ev.ts
        window = self.window
        if st is None:
            if tests[0] is False:
                return None  # cannot start a chain: a fresh state would stay as it is
            st = self.state[key] = _Chain()
        if st.stage > 0 and ts - st.start > window:
            st.stage, st.start, st.times, st.count, st.seen = 0, 0.0, [], 0, []
        stage = st.stage
        steps = self.steps
        if stage == 0:
            first = steps[0]
            t0 = tests[0]
            if t0 is True or (t0 is not False and t0.test(ev)):
                times = st.times
                times.append(ts)
                while times and times[0] < ts - window:
                    times.pop(0)
                if len(times) >= first.count:
                    st.stage, st.start, st.times = 1, times[-first.count], []
            return None
        if stage >= len(steps):
            tl = tests[-1]
            if tl is True or (tl is not False and tl.test(ev)):
                return self._fire(key, st, ev)
            return None
        step = steps[stage]
        ts_ = tests[stage]
        if not (ts_ is True or (ts_ is not False and ts_.test(ev))):
            return None
        if step.distinct_of is not None:
            value = step.distinct_of(ev)
            if value is not None and value not in st.seen:
                st.seen.append(value)
            done = len(st.seen) >= step.count
        else:
            st.count += 1
            done = st.count >= step.count
        if done:
            st.stage, st.count, st.seen = stage + 1, 0, []
            if st.stage >= len(steps):
                return self._fire(key, st, ev)
        return None

    def _fire(self, key: str, st: _Chain, ev: Event) -> Fire:
        names = " then ".join(s.name for s in self.steps)
        text = f"{key}: {names} within {human_duration(ev.ts - st.start)}"
        return Fire(key, st.start, text, {"elapsed_s": ev.ts - st.start})

    def evict(self, now: float) -> int:
        limit = now - self.spec.window
        dead = [
            k
            for k, st in self.state.items()
            if (st.stage > 0 and st.start < limit)
            or (st.stage == 0 and (not st.times or st.times[-1] < limit))
        ]
        return drop_keys(self.state, dead)

    def dump(self) -> dict[str, Any]:
        return {k: st.dump() for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {
            k: _Chain(int(v[0]), float(v[1]), list(v[2]), int(v[3]), list(v[4]))
            for k, v in data.items()
        }


_NEW_VALUE_CAP: Final = 512


class NewValueRule(CompiledRule):
    """A value never seen for this key, once the key's learning period is over."""

    __slots__ = ("value_of",)

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        assert spec.field is not None
        resolved = resolve_field(spec.field)
        assert resolved is not None
        self.value_of = resolved[1]

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        value = self.value_of(ev)
        if value is None:
            return None
        st = self.state.get(key)
        if st is None:
            self.state[key] = [ev.ts, {value}]
            return None
        seen: set[Any] = st[1]
        if value in seen:
            return None
        if len(seen) < _NEW_VALUE_CAP:
            seen.add(value)
        if ev.ts - st[0] < self.spec.learning:
            return None
        text = (
            f"{key}: first {self.spec.field} {value} in {len(seen) - 1} known "
            f"(learning since {human_duration(ev.ts - st[0])})"
        )
        return Fire(key, ev.ts, text, {"known_values": float(len(seen) - 1)})

    def dump(self) -> dict[str, Any]:
        return {k: [st[0], sorted(st[1])] for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: [v[0], set(v[1])] for k, v in data.items()}


#: Intervals read past before a cadence list is compacted.
_CADENCE_COMPACT: Final = 64


class _Cadence:
    """One key's recent intervals since its last long one (see :class:`CadenceRule`), with
    their running sum and sum of squares."""

    __slots__ = ("gaps", "head", "last", "squares", "total")

    def __init__(self, last: float, gaps: list[float]):
        self.last = last
        #: The intervals are ``gaps[head:]``, oldest first (a list with a read position: compiled
        #: list operations, where a deque's methods are generic calls).
        self.gaps: list[float] = list(gaps)
        self.head = 0
        self.total = float(sum(gaps))
        self.squares = float(sum(g * g for g in gaps))

    def recent(self) -> list[float]:
        return self.gaps[self.head :]


class CadenceRule(CompiledRule):
    """Machine-regular access: the last ``min_events`` intervals are short and nearly equal.

    The rule fires when the last ``n`` intervals (``n = min_events - 1``) have a mean ``m`` in
    (0, ``max_interval``] and a coefficient of variation (population standard deviation over
    ``m``) at most ``max_cv``. Then no interval ``g`` of them exceeds ``long_gap``, that is
    ``max_interval * (1 + max_cv * sqrt(n))``: the variance is at least ``(g - m)**2 / n``, so
    ``g - m <= max_cv * m * sqrt(n)``. So a longer interval ends every window that holds it,
    and the intervals before it are of no use: the key keeps only the intervals since its last
    long one, with their sums. A person's reads are mostly minutes apart: in the first 1.5M
    lines of the 10M-line benchmark log, 89% of the intervals between an account's reads are
    longer than the shipped rule's bound (42 s), and those reads store no interval (no new
    float) and read no old one.
    """

    __slots__ = ("long_gap", "max_cv", "max_interval", "n_max")

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.n_max = spec.min_events - 1
        self.max_interval: float = spec.max_interval
        self.max_cv: float = spec.max_cv
        #: The bound above, 1% over (no rounding of the sums can bring a window that holds a
        #: longer interval to the thresholds); ``n`` is at least 2 (the spec refuses fewer
        #: than 3 events).
        self.long_gap: float = (
            spec.max_interval * (1.0 + spec.max_cv * math.sqrt(self.n_max)) * 1.01
        )

    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        st: _Cadence | None = self.state.get(key)
        ts = ev.ts
        if st is None:
            self.state[key] = _Cadence(ts, [])
            return None
        gap = ts - st.last
        st.last = ts
        gaps = st.gaps
        if gap > self.long_gap:  # no window that holds it can fire: start again after it
            if gaps:
                gaps.clear()
                st.head = 0
                st.total = st.squares = 0.0
            return None
        gaps.append(gap)
        st.total += gap
        st.squares += gap * gap
        n_max = self.n_max
        n = len(gaps) - st.head
        if n > n_max:
            old = gaps[st.head]
            st.head += 1
            n -= 1
            st.total -= old
            st.squares -= old * old
            st.head = cut_front(gaps, st.head, _CADENCE_COMPACT)
        if n < n_max:
            return None
        mean = st.total / n
        if mean <= 0 or mean > self.max_interval:
            return None
        var = max(0.0, st.squares / n - mean * mean)
        cv = var**0.5 / mean
        if cv > self.max_cv:
            return None
        text = (
            f"{key}: {n + 1} requests every {mean:.1f} s on average, variation {cv:.0%} "
            "(machine-regular)"
        )
        return Fire(key, ts - mean * n, text, {"mean_interval_s": mean, "cv": cv})

    def dump(self) -> dict[str, Any]:
        return {k: [st.last, st.recent()] for k, st in self.state.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: _Cadence(last, self._since_long(gaps)) for k, (last, gaps) in data.items()}

    def _since_long(self, gaps: list[float]) -> list[float]:
        """The intervals after the last long one (a checkpoint of an earlier version holds the
        last ``n`` whatever their length)."""
        for i in range(len(gaps) - 1, -1, -1):
            if gaps[i] > self.long_gap:
                return gaps[i + 1 :]
        return gaps
