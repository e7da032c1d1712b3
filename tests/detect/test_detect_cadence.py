"""The cadence rule against a plain recount of each key's last ``min_events - 1`` intervals
(mean and population coefficient of variation), whatever the rule keeps (only the intervals
since the key's last long one), and after a dump and load."""

from __future__ import annotations

import math

from detect_events import rule_from_yaml
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.spec import RuleSpec
from rempart.detect.windows import CadenceRule, EventContext
from rempart.events import Event

MIN_EVENTS = 5
N = MIN_EVENTS - 1
MAX_CV = 0.25
MAX_INTERVAL = 20.0
#: Margin around the thresholds inside which the float sums may round either way.
EPS = 1e-9


def _spec() -> RuleSpec:
    return rule_from_yaml(
        "id: X-CAD-1\nversion: 1\ntitle: t\ntype: cadence\nseverity: low\n"
        "description: d\ntechnique: T1119\nfalse_positives: none\n"
        "filter: action == 'beneficiary.read'\ngroup_by: user_name\n"
        f"min_events: {MIN_EVENTS}\nmax_cv: {MAX_CV}\nmax_interval: {int(MAX_INTERVAL)}s\n"
        "samples:\n  - name: five reads two seconds apart\n    events:\n"
        "      - repeat: 5\n        every: 2s\n"
        "        event: {user_name: PH1, action: beneficiary.read}\n"
        "    expect: [{entity: PH1}]\n"
    )


SPEC = _spec()
LONG = CadenceRule(SPEC).long_gap


def _observe(rule: CadenceRule, user: str, ts: float) -> float | None:
    """Offer the rule a read of ``user`` at ``ts``; the mean interval it reports if it fired."""
    ev = Event(
        ts=ts, source_ip="10.0.0.1", action="beneficiary.read", outcome="success", user_name=user
    )
    ctx = EventContext()
    ctx.ts_box = ts
    fire = rule.observe(ev, ctx)
    return None if fire is None else fire.metrics["mean_interval_s"]


def _read(rule: CadenceRule, user: str, ts: float) -> bool:
    """Offer the rule a read of ``user`` at ``ts``; whether it fired."""
    return _observe(rule, user, ts) is not None


def _expected(gaps: list[float]) -> bool | None:
    """Whether the last ``N`` intervals are machine-regular (None: too close to call)."""
    if len(gaps) < N:
        return False
    last = gaps[-N:]
    mean = math.fsum(last) / N
    if abs(mean) < EPS or abs(mean - MAX_INTERVAL) < EPS * MAX_INTERVAL:
        return None
    if mean <= 0 or mean > MAX_INTERVAL:
        return False
    cv = math.sqrt(math.fsum((g - mean) ** 2 for g in last) / N) / mean
    if abs(cv - MAX_CV) < 1e-6:
        return None
    return cv <= MAX_CV


# Intervals around what matters: regular ones, jittered ones, ones about the long bound.
_GAPS = st.one_of(
    st.sampled_from([0.0, 2.0, 5.0, 19.0, 20.0, 21.0, LONG, LONG * 0.99, LONG * 1.01, 600.0]),
    st.floats(0.0, 60.0),
    st.floats(4.0, 6.0),
)


@given(
    st.lists(st.tuples(_GAPS, st.sampled_from(["PH1", "PH2"])), max_size=80),
    st.integers(0, 80),
)
def test_cadence_fires_exactly_when_the_recount_is_regular(
    steps: list[tuple[float, str]], restart_at: int
) -> None:
    rule = CadenceRule(SPEC)
    clock = {"PH1": 1_700_000_000.0, "PH2": 1_700_000_000.0}
    gaps: dict[str, list[float]] = {"PH1": [], "PH2": []}
    started: set[str] = set()
    for k, (gap, user) in enumerate(steps):
        if k == restart_at:  # a restart: the state dumped and loaded into a new rule
            again = CadenceRule(SPEC)
            again.load(rule.dump())
            rule = again
        if user in started:  # the interval as the rule sees it (a difference of two times)
            before = clock[user]
            clock[user] += gap
            gaps[user].append(clock[user] - before)
        started.add(user)
        mean = _observe(rule, user, clock[user])
        want = _expected(gaps[user])
        if want is not None:
            assert (mean is not None) == want, (k, gaps[user][-N:])
        if mean is not None:  # the mean of the last N intervals, from sums since the long one
            assert math.isclose(mean, math.fsum(gaps[user][-N:]) / N, rel_tol=1e-9), k
        # What the rule keeps: only intervals since the key's last long one.
        for cad in rule.state.values():
            assert all(g <= rule.long_gap for g in cad.recent())


def test_a_long_interval_ends_the_window_and_regular_reads_fire_again_after_it() -> None:
    rule = CadenceRule(SPEC)
    ts = 1_700_000_000.0
    fired = []
    for k in range(12):
        ts += 300.0 if k == 6 else 3.0  # reads 3 s apart, one pause of 5 min
        fired.append(_read(rule, "PH1", ts))
    # Intervals after the first read: 4 regular ones reach the window at read 5; the pause at
    # read 7 ends it; 4 more regular ones are needed (read 11).
    assert fired == [False, False, False, False, True, True, False, False, False, False, True, True]
    assert rule.state["PH1"].recent() == [3.0] * N


def test_a_checkpoint_with_long_intervals_keeps_only_those_after_the_last_one() -> None:
    rule = CadenceRule(SPEC)
    rule.load({"PH1": [1_700_000_000.0, [3.0, 900.0, 3.0, 3.0, 3.0]]})
    assert rule.state["PH1"].recent() == [3.0, 3.0, 3.0]
    assert _read(rule, "PH1", 1_700_000_003.0)  # four regular intervals after the long one


def test_a_firing_window_may_hold_an_interval_well_above_the_maximum_mean() -> None:
    # Three intervals of 17 s and one of 28.4 s: mean 19.85 s, variation 0.249, machine-regular
    # by the rule's own thresholds; the long one must not end the window, first or last.
    for order in ([28.4, 17.0, 17.0, 17.0], [17.0, 17.0, 17.0, 28.4]):
        rule = CadenceRule(SPEC)
        ts = 1_700_000_000.0
        assert not _read(rule, "PH1", ts)
        fired = []
        for gap in order:
            ts += gap
            fired.append(_read(rule, "PH1", ts))
        assert fired == [False, False, False, True], order
