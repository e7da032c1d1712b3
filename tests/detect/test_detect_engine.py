"""The engine: event-time driven, same alerts for replay and streaming, durable learning."""

from __future__ import annotations

import random
from pathlib import Path

from detect_events import read_event

from rempart.alerts import Alert
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack, load_rules
from rempart.detect.store import StateStore
from rempart.events import Event

PACK = load_pack("tiers-payant")
DAY = 86400.0
T0 = 1706770800.0  # 2024-02-01 07:00Z, 08:00 in Paris


def read(ts: float, user: str, token: str, ip: str = "81.250.1.2", line: int = 0) -> Event:
    return read_event(
        ts, user, token, source_ip=ip, user_agent="Firefox", source="test.log", line=line
    )


def login(
    ts: float, user: str, ok: bool, ip: str = "81.250.1.2", ua: str = "Firefox", line: int = 0
) -> Event:
    return Event(
        ts=ts,
        source_ip=ip,
        action="auth.login",
        outcome="success" if ok else "failure",
        user_name=user,
        account_kind="pharmacie",
        user_agent=ua,
        status=200 if ok else 401,
        source="test.log",
        line=line,
    )


def normal_days(
    user: str, days: int, per_day: int = 30, rng: random.Random | None = None
) -> list[Event]:
    rng = rng or random.Random(1)
    out = []
    for d in range(days):
        out.append(login(T0 + d * DAY, user, True))
        for k in range(per_day):
            out.append(
                read(
                    T0 + d * DAY + 60 + k * 600 + rng.random() * 30,
                    user,
                    f"k1.{rng.randrange(200):020x}",
                )
            )
    return out


def numbered(events: list[Event]) -> list[Event]:
    events.sort(key=lambda e: e.ts)
    for i, e in enumerate(events, 1):
        e.line = i
    return events


def harvest(user: str, start: float, n: int, ip: str = "185.220.1.9") -> list[Event]:
    events = [login(start, user, True, ip=ip, ua="python-requests/2.31")]
    events += [read(start + 5 + i * 0.5, user, f"k1.{0xABC000 + i:020x}", ip=ip) for i in range(n)]
    return events


def snapshot(alerts: list[Alert]) -> list[tuple[object, ...]]:
    return sorted(
        (
            a.id,
            a.rule_id,
            a.entity,
            a.first_seen,
            a.detected_at,
            a.records_exposed,
            a.updates,
            a.explanation,
        )
        for a in alerts
    )


def stream() -> list[Event]:
    events = normal_days("PH0001", 10) + normal_days("PH0002", 10, rng=random.Random(2))
    events += harvest("PH0001", T0 + 9 * DAY + 3 * 3600, 300)
    events += [
        login(T0 + 9 * DAY + 5 * 3600 + i * 10, "PH0002", False, ip="5.188.1.1", line=0)
        for i in range(12)
    ]
    return numbered(events)


def test_when_account_reads_300_strangers_in_minutes_then_critical_alert_with_exposure() -> None:
    engine = Engine(PACK)
    for e in stream():
        engine.process(e)
    engine.flush()
    harv = [a for a in engine.alerts.values() if a.rule_id == "TP-HARV-001"]
    assert len(harv) == 1, "repeated firing updates one alert"
    alert = harv[0]
    assert alert.entity == "PH0001" and alert.updates > 100
    assert alert.records_exposed >= 300  # the harvest plus what the account read afterwards
    assert "PH0001 read" in alert.explanation and "new" in alert.explanation
    assert alert.detected_at - (T0 + 9 * DAY + 3 * 3600) < 60
    assert any(a.rule_id == "TP-AUTH-001" and a.entity == "PH0002" for a in engine.alerts.values())
    assert not any(
        a.entity == "PH0002" and a.rule_id.startswith("TP-HARV") for a in engine.alerts.values()
    )


def test_replay_and_one_by_one_streaming_give_identical_alerts() -> None:
    events = stream()
    replay = Engine(PACK, lateness=120)
    replay.process_many(events)
    replay.flush()
    live = Engine(PACK, lateness=120)
    created = []
    for e in events:
        created += live.process(e)
    created += live.flush()
    assert snapshot(list(replay.alerts.values())) == snapshot(list(live.alerts.values()))
    assert sorted(a.id for a in created) == sorted(live.alerts)


def test_arrival_order_shuffled_within_lateness_gives_the_same_alerts() -> None:
    events = stream()
    ordered = Engine(PACK, lateness=120)
    ordered.process_many(events)
    ordered.flush()
    rng = random.Random(7)
    jittered = sorted(events, key=lambda e: e.ts + rng.uniform(0, 100))
    assert [e.line for e in jittered] != [e.line for e in events]
    shuffled = Engine(PACK, lateness=120)
    shuffled.process_many(jittered)
    shuffled.flush()
    assert shuffled.late_events == 0
    assert snapshot(list(ordered.alerts.values())) == snapshot(list(shuffled.alerts.values()))


def test_restart_mid_stream_from_the_store_keeps_learned_baselines(tmp_path: Path) -> None:
    events = stream()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 9 * DAY)
    whole = Engine(PACK, lateness=60)
    whole.process_many(events)
    whole.flush()

    first = Engine(PACK, lateness=60)
    first.process_many(events[:cut])
    url = f"sqlite:///{tmp_path}/state.db"
    StateStore(url).save(first.dump_state())
    restarted = Engine(PACK, lateness=60)
    state = StateStore(url).load()
    assert state is not None
    restarted.load_state(state)
    assert restarted.history.size("PH0001") == first.history.size("PH0001") > 0
    restarted.process_many(events[cut:])
    restarted.flush()
    assert snapshot(list(restarted.alerts.values())) == snapshot(list(whole.alerts.values()))

    cold = Engine(PACK, lateness=60)
    cold.process_many(events[cut:])
    cold.flush()
    assert snapshot(list(cold.alerts.values())) != snapshot(list(whole.alerts.values()))


def test_same_input_gives_same_alert_ids_whatever_the_wall_clock() -> None:
    a, b = Engine(PACK), Engine(PACK)
    a.process_many(stream())
    b.process_many(stream())
    assert sorted(a.alerts) == sorted(b.alerts)


def test_take_updated_reports_growing_alerts_once() -> None:
    engine = Engine(PACK)
    for e in harvest("PH0009", T0, 100):
        engine.process(e)
    updated = engine.take_updated()
    assert {a.rule_id for a in updated} >= {"TP-HARV-001"}
    assert engine.take_updated() == []


def test_dispatch_memo_is_right_from_the_first_event_even_for_empty_action(tmp_path) -> None:
    # The engine remembers the last (action, outcome) and its rules, starting from ("", "").
    # A rule that reads no action must see every event, including one with an empty action
    # and outcome first, and events whose action alternates.
    (tmp_path / "r.yaml").write_text(
        "id: X-ANY-1\nversion: 1\ntitle: t\ntype: event_count\nseverity: low\n"
        "description: d\ntechnique: T1078\nfalse_positives: none\n"
        "filter: status == 404\ngroup_by: user_name\nwindow: 1h\nthreshold: 3\n"
        "samples:\n  - name: three 404\n    events:\n"
        + "      - {user_name: PH1, action: auth.login, outcome: failure, status: 404}\n" * 3
        + "    expect: [{entity: PH1}]\n"
    )
    specs = load_rules([tmp_path])
    for actions in (["", "", ""], ["", "auth.login", ""], ["beneficiary.read", "", "auth.login"]):
        engine = Engine(specs, lateness=0)
        for k, action in enumerate(actions):
            engine.process(
                Event(
                    ts=T0 + k,
                    source_ip="10.0.0.1",
                    action=action,
                    outcome="" if action == "" else "failure",
                    user_name="PH1",
                    status=404,
                )
            )
        assert [a.entity for a in engine.alerts.values()] == ["PH1"], actions
