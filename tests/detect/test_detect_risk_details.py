"""What a risk alert tells about its signals, and what counts as one signal of a day.

A baseline rule judges a day; its last reads are settled at the account's next event (a read
waits an hour for its claim), often the next morning. That settlement is the same day again:
it must neither say "today" nor count as a second day for TP-RISK-002 ("on two days").
"""

from __future__ import annotations

from detect_events import claimed_days, read_event

from rempart.alerts import Alert
from rempart.detect.baseline import dated, local_day
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.detect.rollup import RiskRollup
from rempart.events import Event

DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris


def _pack(*ids: str) -> Engine:
    return Engine([s for s in load_pack("tiers-payant") if s.id in ids])


def _usual_days(user: str, days: int) -> list[Event]:
    return claimed_days(user, days, 20, T0)


def _strangers(user: str, day: int, n: int, hour: float, tag: str) -> list[Event]:
    return [
        read_event(T0 + day * DAY + hour * 3600 + k * 1200, user, f"{tag}{k}") for k in range(n)
    ]


def _run(events: list[Event], engine: Engine) -> list[Alert]:
    for ev in sorted(events, key=lambda e: e.ts):
        engine.process(ev)
    engine.flush()
    return list(engine.alerts.values())


def test_two_odd_days_raise_the_risk_alert_which_quotes_each_day() -> None:
    events = _usual_days("PH0001", 10)
    for day in (10, 11):
        events += _strangers("PH0001", day, 8, 1, f"s{day}-")
        events.append(read_event(T0 + day * DAY + 6 * 3600, "PH0001", "p1"))
    [alert] = [
        a for a in _run(events, _pack("TP-INS-001", "TP-RISK-002")) if a.rule_id == "TP-RISK-002"
    ]
    text = alert.explanation
    assert "Strangers' records read with no care relationship" in text
    assert text.count("8 beneficiaries never seen before read today with no claim following") == 2
    assert "11 Feb" in text and "12 Feb" in text  # both days named, with their times


def test_one_odd_day_settled_the_next_morning_is_one_signal() -> None:
    events = _usual_days("PH0002", 10)
    events += _strangers("PH0002", 10, 7, 1, "s")
    events.append(read_event(T0 + 10 * DAY + 5 * 3600, "PH0002", "p1"))
    events += _strangers("PH0002", 10, 2, 9, "e")  # settled only at the next morning's read
    events.append(read_event(T0 + 11 * DAY + 3600, "PH0002", "p1"))
    engine = _pack("TP-INS-001", "TP-RISK-002")
    engine.record_signals = True
    alerts = _run(events, engine)
    assert [a.rule_id for a in alerts] == []
    assert [s[0] for s in engine.signals] == ["TP-INS-001"]


def test_a_days_explanation_read_the_next_day_names_the_day() -> None:
    ts = T0 + 3600
    day = local_day(ts)
    text = "PH1: 9 beneficiaries never seen before read today; 40% of today's reads"
    assert dated(text, day, ts) == text
    later = dated(text, day, ts + DAY)
    assert later == "PH1: 9 beneficiaries never seen before read on 01 Feb; 40% of 01 Feb's reads"


def test_a_risk_state_saved_before_the_details_loads_and_goes_on() -> None:
    spec = next(s for s in load_pack("tiers-payant") if s.id == "TP-RISK-002")
    rollup = RiskRollup(spec)
    rollup.load({"PH3": [50.0, T0, T0, {"Strangers": 50.0}]})  # four fields, no details
    fire = rollup.add("PH3", "Strangers", 50.0, T0 + DAY, "9 read on 02 Feb")
    assert fire is not None
    assert "Strangers (95) [" in fire.render() and "9 read on 02 Feb]" in fire.render()
    assert rollup.dump()["PH3"][4] == {"Strangers": [[T0 + DAY, "9 read on 02 Feb"]]}


def test_a_day_settled_after_a_long_weekend_is_still_one_signal() -> None:
    """Friday evening's strangers settled at Monday's first read, after the engine's hourly
    eviction has forgotten the account's last firing: still Friday, still one signal."""
    events = _usual_days("PH0004", 10)
    events += _strangers("PH0004", 10, 7, 1, "s")
    events.append(read_event(T0 + 10 * DAY + 5 * 3600, "PH0004", "p1"))
    events += _strangers("PH0004", 10, 2, 9, "e")
    events.append(read_event(T0 + 13 * DAY + 3600, "PH0004", "p1"))
    events += [read_event(T0 + d * DAY / 4, "MD0001", "q1") for d in range(44, 53)]  # time goes on
    engine = _pack("TP-INS-001", "TP-RISK-002")
    engine.record_signals = True
    _run(events, engine)
    assert [s[:2] for s in engine.signals] == [("TP-INS-001", "PH0004")]
