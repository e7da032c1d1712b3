"""The peers' bar of ``baseline`` rules resists a campaign in the peer group.

A campaign's harvesting accounts are a few percent of their group's days; left in, they make
the peers' 99th percentile theirs and hide every other account of the group (the peers
benchmark's 1M-line log: the pharmacies' bar for strangers read without a claim was 170
instead of 13, with 13 of 377 pharmacies harvesting).
"""

from __future__ import annotations

import random

from detect_events import claim_event, read_event, rule_from_yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from rempart.detect.baseline import PEER_FENCE, _quantile, peer_bar
from rempart.detect.engine import Engine
from rempart.events import Event

DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris

counts = st.lists(st.integers(0, 60).map(float), min_size=30, max_size=300)


@given(counts, st.sampled_from([0.95, 0.99]), st.sampled_from([0.0, 6.0, 60.0]))
def test_without_outliers_the_bar_is_the_plain_quantile(
    values: list[float], q: float, floor: float
) -> None:
    assume(max(values) <= max(PEER_FENCE * _quantile(values, 0.9), floor))
    assert peer_bar(values, q, floor) == _quantile(values, q)


@given(
    counts,
    st.lists(st.floats(0, 1e9, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([0.95, 0.99]),
    st.sampled_from([0.0, 6.0]),
)
def test_outliers_under_a_tenth_of_the_days_raise_the_bar_at_most_to_the_fence(
    values: list[float], outliers: list[float], q: float, floor: float
) -> None:
    # Fewer than 10% of the days: the 90th percentile stays one of the clean days.
    outliers = outliers[: max(0, (len(values) - 1) // 9)]
    bar = peer_bar(values + outliers, q, floor)
    assert bar <= max(PEER_FENCE * max(values), floor)


def _day_of(user: str, day: int, patients: int, strangers: int, tag: str) -> list[Event]:
    """``patients`` reads each followed by its claim, then ``strangers`` reads left unclaimed."""
    out: list[Event] = []
    start = T0 + day * DAY
    for k in range(patients):
        t = start + k * 600
        out += [
            read_event(t, user, f"{user}-p{k}", line=k),
            claim_event(t + 60, user, line=k),
        ]
    for k in range(strangers):
        out.append(read_event(start + 5 * 3600 + k * 60, user, f"{tag}{user}-{day}-{k}", line=k))
    # A regular patient again at the end of the day: the strangers are past their claim window.
    out.append(read_event(start + 9 * 3600, user, f"{user}-p0", line=patients))
    return out


STRANGERS_RULE = """
id: T-STRANGERS
version: 1
title: Strangers read with no claim (the pack's TP-INS-001 bars, alerting)
type: baseline
severity: medium
description: test
technique: [T1078]
false_positives: [none]
filter: action == "beneficiary.read" and outcome == "success"
group_by: user_name
quantity: new_without_claim
claim_window: 1h
history_days: 30
min_history: 5
own_factor: 1.5
peer_factor: 1
peer_quantile: 0.99
min_value: 6
samples:
  - name: none
    events: [{user_name: PH0001, action: beneficiary.read, beneficiary_token: p1}]
    forbid: [PH0001]
"""


def test_an_insider_stands_out_while_a_campaign_harvests_in_its_peer_group() -> None:
    rng = random.Random(7)
    events: list[Event] = []
    for day in range(9):
        for i in range(57):  # the pharmacies: one to seven strangers a day
            events += _day_of(f"PH{i:04d}", day, 5, rng.randint(1, 7), "s")
        for i in range(3):  # a campaign's harvesters (5% of the group): 150 a day
            events += _day_of(f"PH9{i:03d}", day, 5, 150, "h")
        # The insider: one stranger a day, then twelve on the last day.
        events += _day_of("PH8000", day, 5, 12 if day == 8 else 1, "i")
    events.sort(key=lambda e: e.ts)
    engine = Engine([rule_from_yaml(STRANGERS_RULE)])
    for ev in events:
        engine.process(ev)
    engine.flush()
    accused = {a.entity for a in engine.alerts.values()}
    assert "PH8000" in accused
    insider = next(a for a in engine.alerts.values() if a.entity == "PH8000")
    assert "its peers' 99th percentile 7" in insider.explanation
    assert not accused & {f"PH{i:04d}" for i in range(57)}
