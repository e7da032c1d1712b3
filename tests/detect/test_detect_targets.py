"""Accounts tried by an attacker are targets (victims), accused only once compromised."""

from __future__ import annotations

from pathlib import Path

from test_detect_engine import T0, login, numbered, read

from rempart.alerts import Alert, EntityType
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.detect.store import StateStore
from rempart.events import Event

PACK = load_pack("tiers-payant")
STUFFER = "185.220.101.7"


def stuffing(n: int, start: float = T0 + 3600) -> list[Event]:
    """One address trying ``n`` accounts once each, a second apart."""
    return [login(start + i, f"PH{1000 + i}", False, ip=STUFFER) for i in range(n)]


def run(events: list[Event]) -> list[Alert]:
    engine = Engine(PACK)
    for ev in numbered(events):
        engine.process(ev)
    engine.flush()
    return list(engine.alerts.values())


def ip_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.entity_type == EntityType.IP and a.entity == STUFFER]


def test_when_one_address_tries_40_accounts_then_they_are_targets_not_accused() -> None:
    events = stuffing(40)
    # The tried accounts go on with their legitimate day from their own address.
    events += [read(T0 + 7200 + i, f"PH{1000 + i}", f"k1.{i:020x}") for i in range(40)]
    found = ip_alerts(run(events))
    assert found, "stuffing from one address must raise an IP alert"
    for alert in found:
        assert alert.accounts == []
        assert set(alert.targets) <= {f"PH{1000 + i}" for i in range(40)}
        assert len(alert.targets) >= 8
        # Legitimate reads of victims from their own address are not exposure of the attack.
        assert alert.records_exposed == 0


def test_when_a_tried_account_logs_in_from_the_attacker_then_it_is_accused_and_its_reads_count() -> (
    None
):
    events = stuffing(40)
    victim = "PH1003"
    start = T0 + 3600 + 60
    events.append(login(start, victim, True, ip=STUFFER))
    events += [
        read(start + 5 + i, victim, f"k1.{0xFEED00 + i:020x}", ip=STUFFER) for i in range(25)
    ]
    # Another tried account logs in from its own address: still only a target.
    events.append(login(start + 100, "PH1004", True, ip="81.250.9.9"))
    found = ip_alerts(run(events))
    assert any(victim in a.accounts for a in found)
    assert all("PH1004" not in a.accounts for a in found)
    assert max(a.records_exposed for a in found) == 25


def test_targets_and_watch_survive_a_restart(tmp_path: Path) -> None:
    events = numbered(stuffing(40))
    victim = "PH1005"
    later = [login(T0 + 3600 + 90, victim, True, ip=STUFFER, line=10_001)]
    url = f"sqlite:///{tmp_path}/state.db"
    first = Engine(PACK)
    for ev in events:
        first.process(ev)
    first.flush()
    StateStore(url).save(first.dump_state())
    second = Engine(PACK)
    saved = StateStore(url).load()
    assert saved is not None
    second.load_state(saved)
    for ev in later:
        second.process(ev)
    second.flush()
    found = ip_alerts(list(second.alerts.values()))
    assert found and all(a.targets for a in found)
    assert any(victim in a.accounts for a in found)
    assert Alert.from_dict(found[0].to_dict()).targets == found[0].targets
