"""``surprise`` rules (TP-INS-004): strangers read with no claim, judged by a Beta-binomial test."""

from __future__ import annotations

import math
import random

import pytest
from detect_events import claim_event, read_event
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.baseline import local_day
from rempart.detect.care import SurpriseRule
from rempart.detect.care_state import DayCounts, beta_binomial_tail
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.detect.spec import parse_rule_text
from rempart.detect.windows import EventContext
from rempart.events import Event

RULE = [s for s in load_pack("tiers-payant") if s.id == "TP-INS-004"]
DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris


def _read(ts: float, user: str, token: str, sid: str, line: int) -> Event:
    return read_event(ts, user, token, session_id=sid, line=line)


def _claim(ts: float, user: str, sid: str, line: int) -> Event:
    return claim_event(ts, user, session_id=sid, line=line)


def pharmacy(
    user: str, days: int, *, strangers: dict[int, int] | None = None, seed: int = 1
) -> list[Event]:
    """A pharmacy's days: 40 reads, a quarter of them new patients, 92% followed by a claim;
    ``strangers`` adds, on given days, that many never-seen records read without a claim."""
    rng = random.Random(seed)
    out: list[Event] = []
    n = 0
    for d in range(days):
        sid = f"{user}-{d}"
        for k in range(40):
            t = T0 + d * DAY + k * 600
            token = f"{user}-new-{d}-{k}" if rng.random() < 0.25 else f"{user}-reg-{k % 15}"
            n += 1
            out.append(_read(t, user, token, sid, n))
            if rng.random() < 0.92:
                n += 1
                out.append(_claim(t + 120, user, sid, n))
        for k in range((strangers or {}).get(d, 0)):
            n += 1
            out.append(_read(T0 + d * DAY + 300 + k * 1200, user, f"x-{d}-{k}", sid, n))
    out.sort(key=lambda e: e.ts)
    return out


def _run(events: list[Event]) -> Engine:
    engine = Engine(RULE)
    for e in events:
        engine.process(e)
    engine.flush()
    return engine


def test_when_pharmacy_reads_twelve_strangers_without_claims_in_a_day_then_alert() -> None:
    engine = _run(pharmacy("PH0001", 12, strangers={10: 12}))
    alerts = [a for a in engine.alerts.values() if a.entity == "PH0001"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.rule_id == "TP-INS-004"
    assert T0 + 10 * DAY <= alert.detected_at < T0 + 11 * DAY
    assert "had no claim following" in alert.explanation
    assert alert.metrics["p_value"] < 1e-5 / 3
    assert alert.records_exposed >= 5


def test_when_strangers_come_five_a_day_for_a_week_then_the_longer_spans_catch_them() -> None:
    strangers = {d: 5 for d in range(14, 21)}
    engine = _run(pharmacy("PH0002", 22, strangers=strangers, seed=2))
    alerts = [a for a in engine.alerts.values() if a.entity == "PH0002"]
    assert alerts, "five strangers a day for a week must add up"
    assert alerts[0].detected_at >= T0 + 14 * DAY


def test_when_the_episode_is_over_then_its_days_do_not_alert_again_a_week_long() -> None:
    engine = _run(pharmacy("PH0005", 18, strangers={10: 30}, seed=5))
    alerts = [a for a in engine.alerts.values() if a.entity == "PH0005"]
    assert len(alerts) == 1, [a.explanation for a in alerts]
    assert alerts[0].last_seen <= T0 + 11 * DAY + 3600, (
        "later days must not fire on the explained day"
    )


def test_when_pharmacy_works_as_usual_for_three_weeks_then_no_alert() -> None:
    for seed in range(3):
        engine = _run(pharmacy(f"PH01{seed}", 21, seed=seed))
        assert not engine.alerts


def test_when_the_stranger_is_claimed_in_the_same_session_then_no_orphan() -> None:
    events = pharmacy("PH0003", 12)
    n = 10_000
    for k in range(12):
        t = T0 + 10 * DAY + 3600 + k * 900
        n += 2
        events += [_read(t, "PH0003", f"walkin-{k}", "PH0003-10", n)]
        events += [_claim(t + 60, "PH0003", "PH0003-10", n + 1)]
    events.sort(key=lambda e: e.ts)
    assert not _run(events).alerts


@pytest.mark.parametrize("cut_at", [9 * DAY, 10 * DAY + 6 * 3600])
def test_when_the_engine_restarts_mid_stream_then_the_learned_share_is_kept(
    cut_at: float,
) -> None:
    events = pharmacy("PH0004", 12, strangers={10: 12}, seed=4)
    whole = _run(events)
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + cut_at)
    first = Engine(RULE)
    for e in events[:cut]:
        first.process(e)
    state = first.dump_state()
    second = Engine(RULE)
    second.load_state(state)
    for e in events[cut:]:
        second.process(e)
    second.flush()
    assert [a.to_dict() for a in second.alerts.values()] == [
        a.to_dict() for a in whole.alerts.values()
    ]
    assert whole.alerts


def _brute_tail(x: int, n: int, a: float, b: float) -> float:
    lb = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    total = 0.0
    for k in range(x, n + 1):
        lk = (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + math.lgamma(k + a)
            + math.lgamma(n - k + b)
            - math.lgamma(n + a + b)
        )
        total += math.exp(lk - lb)
    return total


@given(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=0, max_value=300),
    st.floats(min_value=0.5, max_value=200),
    st.floats(min_value=0.5, max_value=2000),
)
def test_beta_binomial_tail_matches_the_exact_sum(x: int, n: int, a: float, b: float) -> None:
    exact = min(1.0, _brute_tail(x, n, a, b)) if 0 < x <= n else (1.0 if x <= 0 else 0.0)
    got = beta_binomial_tail(x, n, a, b)
    assert math.isclose(got, exact, rel_tol=1e-6, abs_tol=1e-300) or (
        # below the mode the early stop may cut a long tail; the rule never tests there
        x <= n * a / (a + b)
    )


def test_surprise_rule_with_bad_spans_alphas_or_sample_care_is_refused_with_its_line() -> None:
    text = """
id: TP-TEST-001
version: 1
title: t
type: surprise
severity: high
description: d
technique: T1078
false_positives: [none]
filter: action == "beneficiary.read"
spans: [0, 40]
alpha: 2
care_alpha: 1.5
samples:
  - name: s
    care_history: [{account: PH1, beneficiary: "c{i}", count: 0}]
    events: [{user_name: PH1, action: beneficiary.read, beneficiary_token: a}]
    forbid: [PH1]
"""
    specs, problems = parse_rule_text(text, "x.yaml")
    assert not specs
    messages = {p.where: str(p) for p in problems}
    assert any(w == "x.yaml:11" and "spans" in m for w, m in messages.items())
    assert any(w == "x.yaml:12" and "alpha" in m for w, m in messages.items())
    assert any(w == "x.yaml:13" and "care_alpha" in m for w, m in messages.items())
    assert any(w == "x.yaml:16" and "care_history" in m for w, m in messages.items())


def test_when_an_account_works_for_forty_days_then_its_state_stays_bounded() -> None:
    # Strangers on two early days: those days are accused, hence recorded as explained.
    events = pharmacy("PH0006", 40, strangers={3: 40, 6: 40}, seed=6)
    # It ends with unclaimed reads over twice the claim window: by the last one, the older ones
    # must have left the reads awaiting a claim (as orphans).
    window = RULE[0].claim_window
    end = events[-1].ts + 60.0
    tail = [end, end + window / 2, end + window * 1.5, end + window * 2]
    events += [
        _read(t, "PH0006", f"{0xE0000000 + i:08x}", "tail", 10**6 + i) for i, t in enumerate(tail)
    ]
    engine = _run(events)
    rule = engine.rules[0]
    st = rule.state["PH0006"]
    assert [read.ts for read in st.reads()] == tail[2:]
    last_day = st.days.last
    accused = {local_day(a.first_seen) for a in engine.alerts.values()}
    assert accused and min(accused) < last_day - 31
    assert all(d > last_day - 31 for d, _n, _x in st.days.rows())
    assert all(d > last_day - 31 for d in st.explained)
    assert all(d > last_day - 7 for d, _t, _h in st.orphans)
    assert all(read.ts >= st.last - rule.claim_window for read in st.reads())
    assert all(len(pool) <= 31 for pool in rule.peers.values())


def _observe_read(rule: SurpriseRule, ts: float, user: str, token: str, novel: bool) -> int:
    ctx = EventContext()
    ctx.ts_box = ts
    ctx.bh = int(token[-8:], 16) if len(token) >= 8 else 1
    ctx.novel = novel
    rule.observe(_read(ts, user, token, f"{user}-s", 1), ctx)
    return ctx.day


# Paris midnights, and its DST changes (2024-03-31 and 2024-10-27, 01:00 UTC).
_EDGES = [1706742000.0, 1711839600.0, 1711846800.0, 1729990800.0, 1729983600.0]


def test_the_local_day_of_a_read_is_that_of_local_day_across_midnight_and_dst() -> None:
    rule = SurpriseRule(RULE[0])
    for edge in _EDGES:
        steps = [edge + k * 97.0 for k in range(-80, 80)]
        steps += [math.nextafter(edge, 0.0), edge, edge + 0.5, edge - 0.5, edge - 3600.0]
        for ts in steps:
            assert _observe_read(rule, ts, "PH2000", "0000abcd", False) == local_day(ts), ts


@given(st.lists(st.floats(min_value=1.7e9, max_value=1.8e9), min_size=1, max_size=60))
def test_the_local_day_of_reads_in_any_order_is_that_of_local_day(times: list[float]) -> None:
    rule = SurpriseRule(RULE[0])
    for ts in times:
        assert _observe_read(rule, ts, "PH2001", "0000abcd", False) == local_day(ts), ts


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=80), st.integers(min_value=0, max_value=1)),
        max_size=200,
    )
)
def test_day_counts_hold_the_counts_of_the_last_days_like_a_dict(
    adds: list[tuple[int, int]],
) -> None:
    size = 7
    counts = DayCounts(size)
    model: dict[int, list[int]] = {}
    last = -1
    for day, index in adds:
        if day <= last - size:
            continue  # older than the ring: ignored
        last = max(last, day)
        model = {d: c for d, c in model.items() if d > last - size}
        model.setdefault(day, [0, 0])[index] += 1
        counts.add(day, index)
        assert counts.rows() == [(d, c[0], c[1]) for d, c in sorted(model.items())]
        assert all(counts.get(d) == (c[0], c[1]) for d, c in model.items())


def test_when_the_peers_forget_a_day_then_a_late_read_of_it_counts_in_a_new_row() -> None:
    rule = SurpriseRule(RULE[0])
    t = T0 + 3600
    _observe_read(rule, t, "PH3000", "000000a1", True)
    _observe_read(rule, t + 60, "PH3000", "000000a2", True)  # counted through the cache
    day = local_day(t)
    assert rule.peers["pharmacie"][day] == [2, 0]
    _observe_read(rule, t + 40 * DAY, "PH3001", "000000b1", True)  # the pool forgets `day`
    assert day not in rule.peers["pharmacie"]
    _observe_read(rule, t + 120, "PH3000", "000000a3", True)  # a late read of that day
    assert rule.peers["pharmacie"][day] == [1, 0]
    assert rule.state["PH3000"].days.get(day) == (3, 0)
