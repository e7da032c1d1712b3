"""Care relationships from the operator's claims history (``Engine.add_care_history``).

A practice's first weeks under Rempart are full of first reads of patients it has billed for
years; with their claims on record, only strangers are "never read before", and a handful of
strangers read without a claim stands out.
"""

from __future__ import annotations

import random

from detect_events import claim_event, read_event
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.engine import Engine
from rempart.detect.history import BeneficiaryHistory, beneficiary_hash
from rempart.detect.loader import load_pack
from rempart.events import Event

RULE = [s for s in load_pack("tiers-payant") if s.id == "TP-INS-004"]
DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris
USER = "PH0900"


def practice(days: int, strangers: int, seed: int = 3) -> tuple[list[Event], list[str]]:
    """A pharmacy's first ``days`` days under Rempart: 30 reads a day of regulars it has billed
    before, each read for the first time since deployment, 20% of them with no claim (paid
    otherwise), plus two new patients a day, claimed; on the last day ``strangers`` records
    of people it never cared for, with no claim. Returns the events and the regulars' tokens."""
    rng = random.Random(seed)
    events: list[Event] = []
    regulars: list[str] = []
    line = 0
    for d in range(days):
        sid = f"s{d}"
        reads = [(f"reg-{d}-{k}", 0.8) for k in range(30)]
        reads += [(f"new-{d}-{k}", 0.95) for k in range(2)]
        if d == days - 1:
            reads += [(f"stranger-{k}", 0.0) for k in range(strangers)]
        rng.shuffle(reads)
        for k, (token, claim_rate) in enumerate(reads):
            if token.startswith("reg-"):
                regulars.append(token)
            t = T0 + d * DAY + k * 600
            line += 1
            events.append(read_event(t, USER, token, session_id=sid, line=line))
            if rng.random() < claim_rate:
                line += 1
                events.append(claim_event(t + 90, USER, session_id=sid, line=line))
    events.sort(key=lambda e: e.ts)
    return events, regulars


def _run(events: list[Event], care: list[str] | None, engine: Engine | None = None) -> Engine:
    engine = engine or Engine(RULE)
    if care is not None:
        engine.add_care_history({USER: [beneficiary_hash(t) for t in care]})
    for ev in events:
        engine.process(ev)
    engine.flush()
    return engine


def test_with_the_claims_history_six_strangers_without_claims_alert_and_without_it_not() -> None:
    events, regulars = practice(21, strangers=6)
    alone = _run(events, None)
    assert not alone.alerts, "in the log alone, six strangers hide among 30 first reads a day"
    informed = _run(events, regulars)
    (alert,) = informed.alerts.values()
    assert alert.entity == USER and alert.rule_id == "TP-INS-004"
    assert alert.detected_at >= T0 + 20 * DAY
    assert "with no claim on record nor read before" in alert.explanation
    assert 1e-5 / 3 <= alert.metrics["p_value"] < 1e-3 / 3, "alerts at care_alpha only"


def test_with_the_claims_history_the_usual_weeks_do_not_alert() -> None:
    for seed in range(4):
        events, regulars = practice(28, strangers=0, seed=seed)
        assert not _run(events, regulars).alerts


def test_a_restart_from_a_checkpoint_keeps_the_care_history_and_its_test() -> None:
    events, regulars = practice(21, strangers=6)
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * DAY)
    first = _run(events[:cut], regulars)
    second = Engine(RULE)
    second.load_state(first.dump_state())  # the files are not loaded again
    assert second.care_history
    _run(events[cut:], None, second)
    assert [a.to_dict() for a in second.alerts.values()] == [
        a.to_dict() for a in _run(events, regulars).alerts.values()
    ]
    assert second.alerts


def test_loading_the_care_history_twice_adds_nothing_the_second_time() -> None:
    engine = Engine(RULE)
    care = {USER: [beneficiary_hash(f"reg-{k}") for k in range(500)], "MD0001": [7, 8]}
    assert engine.add_care_history(care) == 502
    assert engine.add_care_history(care) == 0


@given(
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=400),
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=400),
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=50),
)
def test_known_beneficiaries_are_never_new_and_reads_keep_working(
    read_before: list[int], known: list[int], read_after: list[int]
) -> None:
    history = BeneficiaryHistory()
    seen: set[int] = set()
    for h in read_before:
        assert history.observe("A", h) == (h not in seen)
        seen.add(h)
    assert history.add_known("A", known) == len(set(known) - seen)
    seen |= set(known)
    for h in read_after:
        assert history.observe("A", h) == (h not in seen)
        seen.add(h)
    assert history.size("A") == len(seen)
    restored = BeneficiaryHistory()
    restored.load(history.dump())
    assert all(restored.seen("A", h) for h in seen)
