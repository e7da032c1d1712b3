"""The value-count window against a plain recount: distinct values among the key's events of
the last ``window`` seconds, whatever the window holds (its per-value dict is kept only while
the window holds enough events to reach the threshold), and after a dump and load. With
``cleared_by``, the same recount without the values cleared since their latest event."""

from __future__ import annotations

from detect_events import rule_from_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.detect.spec import RuleSpec
from rempart.detect.windows import ClearedValueCountRule, EventContext, ValueCountRule
from rempart.events import Event

WINDOW = 60.0
THRESHOLD = 4


def _spec() -> RuleSpec:
    return rule_from_yaml(
        "id: X-VC-1\nversion: 1\ntitle: t\ntype: value_count\nseverity: low\n"
        "description: d\ntechnique: T1110.003\nfalse_positives: none\n"
        "filter: action == 'auth.login'\ngroup_by: user_name\nfield: source_ip\n"
        f"window: {int(WINDOW)}s\nthreshold: {THRESHOLD}\n"
        "samples:\n  - name: four addresses\n    events:\n"
        + "".join(
            f"      - {{user_name: PH1, action: auth.login, source_ip: 10.0.0.{i}}}\n"
            for i in range(4)
        )
        + "    expect: [{entity: PH1}]\n"
    )


SPEC = _spec()


@given(
    st.lists(
        st.tuples(st.floats(0, 50), st.integers(0, 6), st.sampled_from(["PH1", "PH2"])),
        max_size=120,
    ),
    st.integers(0, 120),
)
def test_value_count_fires_exactly_when_the_recount_reaches_the_threshold(
    steps: list[tuple[float, int, str]], restart_at: int
) -> None:
    rule = ValueCountRule(SPEC)
    seen: list[tuple[float, str, str]] = []
    ts = 1_700_000_000.0
    for k, (gap, ip, user) in enumerate(steps):
        if k == restart_at:  # a restart: the state dumped and loaded into a new rule
            again = ValueCountRule(SPEC)
            again.load(rule.dump())
            rule = again
        ts += gap
        ev = Event(
            ts=ts, source_ip=f"10.0.0.{ip}", action="auth.login", outcome="failure", user_name=user
        )
        ctx = EventContext()
        ctx.ts_box = ts
        fire = rule.observe(ev, ctx)
        seen.append((ts, user, f"10.0.0.{ip}"))
        distinct = {v for t, u, v in seen if u == user and t >= ts - WINDOW}
        assert (fire is not None) == (len(distinct) >= THRESHOLD), (k, distinct)
        if fire is not None:
            assert fire.metrics["distinct"] == len(distinct)
            first = min(t for t, u, _v in seen if u == user and t >= ts - WINDOW)
            assert fire.first_seen == first
        # The window's ends kept beside the list are the list's (what expiry and eviction read).
        for window in rule.state.values():
            events = window.events()
            assert window.oldest == events[0][0]
            assert window.newest == events[-1][0]
            assert len(events) == window.size()
        if k % 5 == 4:  # eviction drops the keys with no event left in the window, only those
            rule.evict(ts)
            assert set(rule.state) == {u for t, u, _v in seen if t >= ts - WINDOW}


def test_a_long_window_is_compacted_without_losing_its_values() -> None:
    # 6,000 events 0.05 s apart: 1,200 in a 60 s window, so the lists are cut at their read
    # position (every 1,024 expired entries) many times; the count stays the recount's.
    rule = ValueCountRule(SPEC)
    times: list[float] = []
    values: list[str] = []
    start = 0
    for k in range(6000):
        ts = 1_700_000_000.0 + k * 0.05
        ip = f"10.0.0.{(k * 7) % 5 if k < 4000 else k % 3}"
        ev = Event(ts=ts, source_ip=ip, action="auth.login", outcome="failure", user_name="PH1")
        ctx = EventContext()
        ctx.ts_box = ts
        fire = rule.observe(ev, ctx)
        times.append(ts)
        values.append(ip)
        while times[start] < ts - WINDOW:
            start += 1
        distinct = len(set(values[start:]))
        assert (fire is not None) == (distinct >= THRESHOLD), k
        if fire is not None:
            assert fire.metrics["distinct"] == distinct
    st = rule.state["PH1"]
    assert len(st.items) < 6000  # cut, not grown without end (2 items an event)
    assert rule.dump()["PH1"] == [[t, v] for t, v in zip(times[start:], values[start:])]


CLEARED = rule_from_yaml(
    "id: X-VC-2\nversion: 1\ntitle: t\ntype: value_count\nseverity: low\n"
    "description: d\ntechnique: T1110.004\nfalse_positives: none\n"
    "filter: action == 'auth.login' and outcome == 'failure'\n"
    "cleared_by: action == 'auth.login' and outcome == 'success'\n"
    "group_by: user_agent\nfield: user_name\n"
    f"window: {int(WINDOW)}s\nthreshold: {THRESHOLD}\n"
    "samples:\n  - name: four accounts\n    events:\n"
    + "".join(
        f"      - {{user_name: PH{i}, action: auth.login, outcome: failure, user_agent: ua}}\n"
        for i in range(4)
    )
    + "    expect: [{entity: ua}]\n"
)


def _counted(seen: list[tuple[float, str, str, str]], ua: str, now: float) -> set[str]:
    """The accounts of ``ua`` whose latest failure is in the window and not cleared since."""
    latest: dict[str, float] = {}
    pending: dict[str, bool] = {}
    for t, u, name, outcome in seen:
        if u != ua:
            continue
        if outcome == "failure":
            latest[name] = t
            pending[name] = True
        elif outcome == "success":
            pending[name] = False
    return {n for n, t in latest.items() if pending[n] and t >= now - WINDOW}


@given(
    st.lists(
        st.tuples(
            # Whole seconds, so that events fall on the window's edge too.
            st.integers(0, 12),
            st.integers(0, 5),
            st.sampled_from(["ua1", "ua2"]),
            st.sampled_from(["failure"] * 3 + ["success"] * 2 + ["refused"]),
        ),
        min_size=10,
        max_size=150,
    ),
    st.integers(0, 150),
)
@settings(max_examples=300)
def test_cleared_value_count_counts_the_values_not_cleared_since_their_latest_event(
    steps: list[tuple[int, int, str, str]], restart_at: int
) -> None:
    rule = ClearedValueCountRule(CLEARED)
    seen: list[tuple[float, str, str, str]] = []
    ts = 1_700_000_000.0
    for k, (gap, who, ua, outcome) in enumerate(steps):
        if k == restart_at:  # a restart: the state dumped and loaded into a new rule
            again = ClearedValueCountRule(CLEARED)
            again.load(rule.dump())
            rule = again
        ts += gap
        user = f"PH{who}"
        ev = Event(
            ts=ts,
            source_ip="10.0.0.1",
            action="auth.login",
            outcome=outcome,
            user_name=user,
            user_agent=ua,
        )
        fire = rule.observe(ev, EventContext())
        seen.append((ts, ua, user, outcome))
        if outcome == "failure":
            counted = _counted(seen, ua, ts)
            assert (fire is not None) == (len(counted) >= THRESHOLD), (k, counted)
            if fire is not None:
                assert fire.metrics["distinct"] == len(counted)
                last = {n: t for t, u, n, o in seen if u == ua and o == "failure"}
                assert fire.first_seen == min(last[n] for n in counted)
                assert fire.related is not None and set(fire.related) == counted
        else:  # a success clears, anything else is ignored: neither fires
            assert fire is None
        if k % 5 == 4:  # eviction keeps exactly the keys with a value still counted
            rule.evict(ts)
            assert set(rule.state) == {u for u in ("ua1", "ua2") if _counted(seen, u, ts)}


def test_cleared_value_count_explains_what_is_counted() -> None:
    rule = ClearedValueCountRule(CLEARED)
    fire = None
    for i in range(THRESHOLD + 2):
        outcome = "success" if i == 1 else "failure"
        user = "PH0" if i == 1 else f"PH{i}"  # PH0 fails, then logs in: not counted
        ev = Event(
            ts=1_700_000_000.0 + 10 * i,
            source_ip="10.0.0.1",
            action="auth.login",
            outcome=outcome,
            user_name=user,
            user_agent="ua",
        )
        fire = rule.observe(ev, EventContext())
    assert fire is not None
    assert fire.render() == (
        "ua saw 4 distinct accounts in 30 s, none of them followed since by "
        "action == 'auth.login' and outcome == 'success' (threshold 4 in 60 s)"
    )
