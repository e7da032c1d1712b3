"""Baseline rules that pair claims and rules that do not share one per-account day state.

Claims are offered to the claim-pairing rules only, so a claim of another day rolls their day
alone (a claim-only day, a late claim, out-of-order days): every rule must still see exactly
the days it would see on its own. The oracle is ``Engine(reference=True)`` (each rule keeps its
own state) and, for alerts, the pre-optimisation runtime kept in ``detect_engine_reference``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from detect_engine_reference import ReferenceBaselineRule
from detect_events import claim_event, claimed_days, read_event
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rempart.alerts import Severity
from rempart.detect.baseline import BaselineRule, _ReadDays, local_day
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.detect.spec import RuleSpec
from rempart.events import Event

DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris

READS = 'action == "beneficiary.read" and outcome == "success"'


def spec(rule_id: str, quantity: str, **kw: Any) -> RuleSpec:
    """A baseline rule with low bars (one day of history, a value of 1), so a few events fire."""
    fields: dict[str, Any] = {
        "filter": READS,
        "min_history": 1,
        "own_factor": 1.0,
        "min_value": 1.0,
        "claim_window": 600.0,
        **kw,
    }
    return RuleSpec(
        id=rule_id,
        version=1,
        title=rule_id,
        type="baseline",
        severity=Severity.MEDIUM,
        description=quantity,
        technique=("T1078",),
        false_positives=(),
        where="test",
        quantity=quantity,
        **fields,
    )


def _specs() -> list[RuleSpec]:
    return [
        spec("T-DIST", "distinct_beneficiaries"),
        spec("T-NEW", "new_beneficiaries"),
        spec("T-SHARE", "novelty_share", min_reads=2),
        spec("T-ORPH", "new_without_claim"),
        spec("T-ORPH3", "new_without_claim", span_days=3),
        spec("T-NOCLAIM", "reads_without_claim"),
    ]


SPECS = _specs()


def read(ts: float, user: str, token: str) -> Event:
    return read_event(ts, user, token, line=int(ts) % 100000)


def claim(ts: float, user: str, ok: bool = True) -> Event:
    outcome, status = ("success", 200) if ok else ("failure", 400)
    return claim_event(ts, user, outcome=outcome, status=status, line=int(ts) % 100000)


def regular_days(user: str, days: int) -> list[Event]:
    """Days of five patients each, every read followed by its claim."""
    return claimed_days(user, days, 5, T0, gap=1800, claim_after=60)


def _engine(specs: list[RuleSpec], mode: str) -> Engine:
    engine = Engine(specs, reference=mode != "shared")
    if mode == "verbatim":
        engine.rules = [
            ReferenceBaselineRule(r.spec) if r.spec.type == "baseline" else r for r in engine.rules
        ]
    return engine


def _run(events: list[Event], mode: str, specs: list[RuleSpec] = SPECS) -> Engine:
    engine = _engine(specs, mode)
    for ev in events:
        engine.process(ev)
    engine.flush()
    return engine


def _alerts(engine: Engine) -> list[str]:
    return [
        json.dumps(a.to_dict(), sort_keys=True)
        for a in sorted(engine.alerts.values(), key=lambda a: a.id)
    ]


def _rules_state(engine: Engine) -> list[tuple[str, Any]]:
    """Each baseline rule's dumped state, keys in dump order (the bytes a checkpoint holds)."""
    rules = engine.dump_state()["rules"]
    return [(rid, list(d["keys"].items()), d["peers"], d["peer_cache"]) for rid, d in rules.items()]


def _keys(engine: Engine, rule_id: str) -> dict[str, list[Any]]:
    keys: dict[str, list[Any]] = engine.dump_state()["rules"][rule_id]["keys"]
    return keys


def _same_as_per_rule(events: list[Event]) -> Engine:
    shared = _run(events, "shared")
    assert _alerts(shared) == _alerts(_run(events, "reference"))
    assert _rules_state(shared) == _rules_state(_run(events, "reference"))
    assert _alerts(shared) == _alerts(_run(events, "verbatim"))
    return shared


def _restarted(events: list[Event], half: int, first: str, second: str) -> Engine:
    engine = _run(events[:half], first)
    saved = msgspec.msgpack.decode(msgspec.msgpack.encode(engine.dump_state()))
    again = _engine(SPECS, second)
    again.load_state(saved)
    for ev in events[half:]:
        again.process(ev)
    again.flush()
    return again


def test_the_packs_baseline_rules_share_one_day_state_with_a_claim_pairing_side() -> None:
    engine = Engine([s for s in load_pack("tiers-payant") if s.type == "baseline"])
    trackers = {id(r.tracker): r.tracker for r in engine.rules if isinstance(r, BaselineRule)}
    assert len(trackers) == 1
    (tracker,) = trackers.values()
    assert tracker.sides == 2
    sides = {m.spec.id: m.side == tracker.pair_side for m in tracker.members}
    assert sides == {
        "TP-HARV-002": False,
        "TP-SLOW-001": False,
        "TP-INS-001": True,
    }


def test_a_plain_rule_whose_filter_takes_claims_keeps_its_own_day_state() -> None:
    specs = [spec("T-DIST", "distinct_beneficiaries", filter="true"), *SPECS[1:]]
    engine = Engine(specs)
    by_id = {r.spec.id: r for r in engine.rules if isinstance(r, BaselineRule)}
    assert len(by_id["T-DIST"].tracker.members) == 1
    assert by_id["T-NEW"].tracker is by_id["T-ORPH"].tracker
    # Claims count as reads for the plain rule (it reads them itself), as per rule.
    events = regular_days("PH1", 3) + [
        read(T0 + 3 * DAY + 600 * i, "PH1", f"x{i}") for i in range(6)
    ]
    shared = _run(events, "shared", specs)
    assert _alerts(shared) == _alerts(_run(events, "reference", specs))
    assert _rules_state(shared) == _rules_state(_run(events, "reference", specs))


def test_a_claim_only_day_rolls_the_claim_pairing_rules_alone() -> None:
    events = regular_days("PH1", 3)
    events += [claim(T0 + 3 * DAY + 3600, "PH1"), claim(T0 + 3 * DAY + 7200, "PH1")]
    shared = _same_as_per_rule(events)
    # The plain rules still hold day 2's reads; the pairing ones rolled to the claims' day.
    dist, orph = _keys(shared, "T-DIST")["PH1"], _keys(shared, "T-ORPH")["PH1"]
    assert dist[2] != [] and orph[2] == []
    assert orph[0] == dist[0] + 1
    # The next read rolls the plain rules too: one shared day again, same alerts as per rule.
    events += [read(T0 + 4 * DAY + 60 * i, "PH1", f"s{i}") for i in range(8)]
    events += [read(T0 + 4 * DAY + 7200, "PH1", "p1")]  # the strangers' claim window passed
    shared = _same_as_per_rule(events)
    dist, orph = _keys(shared, "T-DIST")["PH1"], _keys(shared, "T-ORPH")["PH1"]
    assert dist[:4] == orph[:4]
    assert {a.rule_id for a in shared.alerts.values()} >= {"T-DIST", "T-NEW", "T-ORPH"}


def test_a_late_read_of_the_previous_day_after_a_claim_keeps_each_rules_own_day() -> None:
    events = regular_days("PH1", 3)
    d3 = T0 + 3 * DAY
    events += [read(d3 + 600 * i, "PH1", f"s{i}") for i in range(4)]
    events += [claim(d3 + DAY + 60, "PH1")]  # next day's claim...
    events += [read(d3 + 3000 + 60 * i, "PH1", f"t{i}") for i in range(3)]  # ...then late reads
    shared = _same_as_per_rule(events)
    dist, orph = _keys(shared, "T-DIST")["PH1"], _keys(shared, "T-ORPH")["PH1"]
    # The pairing rules went back to day 3 with an empty set; the plain ones never left it.
    assert dist[0] == orph[0]
    assert len(dist[2]) == 7 and len(orph[2]) == 3
    # Later reads of that day and of the next ones keep matching the per-rule evaluation.
    events += [read(d3 + 4000 + 60 * i, "PH1", f"u{i}") for i in range(3)]
    events += [read(d3 + DAY + 600 * i, "PH1", f"v{i}") for i in range(9)]
    _same_as_per_rule(events)


def test_an_account_first_seen_by_a_claim_is_unknown_to_the_plain_rules() -> None:
    events = [claim(T0, "PH9"), claim(T0 + DAY, "PH9"), read(T0 + DAY + 60, "PH9", "p1")]
    shared = _same_as_per_rule(events[:2])
    assert "PH9" not in _keys(shared, "T-DIST") and "PH9" in _keys(shared, "T-ORPH")
    _same_as_per_rule(events)


def test_restart_mid_day_while_the_sides_disagree_gives_the_uninterrupted_results() -> None:
    d3 = T0 + 3 * DAY
    events = regular_days("PH1", 3) + regular_days("PH2", 3)
    events += [read(d3 + 600 * i, "PH1", f"s{i}") for i in range(4)]
    events += [claim(d3 + DAY + 60, "PH1"), claim(d3 + DAY + 60, "PH2")]
    half = len(events)
    events += [read(d3 + 3000 + 60 * i, "PH1", f"t{i}") for i in range(3)]
    events += [read(d3 + DAY + 600 * i, "PH2", f"v{i}") for i in range(9)]
    whole = _run(events, "shared")
    for first in ("shared", "reference"):  # a checkpoint of either engine
        again = _restarted(events, half, first, "shared")
        assert _alerts(again) == _alerts(whole)
        assert _rules_state(again) == _rules_state(whole)
    # A dump taken while the sides disagree is each rule's own view, as per rule.
    cut = _run(events[:half], "shared")
    assert _rules_state(cut) == _rules_state(_run(events[:half], "reference"))


_event = st.tuples(
    st.integers(0, 4),  # day
    st.integers(0, 86399),  # second of the day
    st.sampled_from(["PH1", "PH2"]),
    st.sampled_from(["read", "read", "read", "claim", "claim-failed", "read-untokened"]),
    st.integers(0, 7),  # beneficiary
)


def _events(raw: list[tuple[int, int, str, str, int]]) -> list[Event]:
    out: list[Event] = []
    for day, sec, user, kind, who in raw:
        ts = T0 + day * DAY + sec
        if kind.startswith("claim"):
            out.append(claim(ts, user, ok=kind == "claim"))
        else:
            ev = read(ts, user, f"b{who}")
            if kind == "read-untokened":
                ev.beneficiary_token = None
            out.append(ev)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.integers(0, 6),
    raw=st.lists(_event, min_size=1, max_size=80),
    cut=st.floats(0, 1),
)
def test_any_arrival_order_gives_the_per_rule_alerts_and_state(
    prefix: int, raw: list[tuple[int, int, str, str, int]], cut: float
) -> None:
    # Some regular history first (so thresholds exist), then events in arbitrary order: days
    # go backwards and forwards, claims come alone, accounts start with a claim.
    events = regular_days("PH1", prefix) + _events([(d + prefix, *r) for d, *r in raw])
    shared = _same_as_per_rule(events)
    half = int(cut * len(events))
    again = _restarted(events, half, "shared", "shared")
    assert _alerts(again) == _alerts(_restarted(events, half, "reference", "reference"))
    assert _rules_state(again) == _rules_state(shared)


def test_the_tracker_type_is_the_one_the_engine_dispatches_to() -> None:
    engine = Engine(SPECS)
    trackers = {id(r.tracker) for r in engine.rules if isinstance(r, BaselineRule)}
    assert len(trackers) == 1
    # A dispatch entry: position, rule or None, group of baseline rules or None, filter.
    entries = engine._rules_for("claim.create", "success")
    assert [(e.rule, type(e.group)) for e in entries] == [(None, _ReadDays)]
    reads = engine._rules_for("beneficiary.read", "success")
    assert [type(e.group) for e in reads if e.rule is None] == [_ReadDays]


_DST = [1711846800.0, 1729990800.0]  # 2024-03-31 and 2024-10-27 01:00Z: Paris changes offset
_AROUND = st.builds(
    lambda base, hours, sec: base + hours * 3600 + sec,
    st.sampled_from([*_DST, T0]),
    st.integers(-30, 30),
    st.floats(0, 3599.9),
)


@settings(max_examples=60, deadline=None)
# Spring forward: the day that began at +1 ends at +2, an hour earlier in UTC.
@example(times=[_DST[0] - 1800, _DST[0] + 21.5 * 3600], in_order=True)
@given(times=st.lists(_AROUND, min_size=1, max_size=40), in_order=st.booleans())
def test_each_read_is_counted_on_its_local_calendar_day(times: list[float], in_order: bool) -> None:
    # Hours around local midnights and daylight-saving changes, in order or not.
    if in_order:
        times = sorted(times)
    engine = _run([read(ts, f"U{i}", "p1") for i, ts in enumerate(times)], "shared")
    keys = _keys(engine, "T-DIST")
    assert [keys[f"U{i}"][0] for i in range(len(times))] == [local_day(ts) for ts in times]
