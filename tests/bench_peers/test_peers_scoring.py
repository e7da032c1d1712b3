"""Scoring of peer-benchmark detections against truth.json (bench/peers/peers_scoring.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "peers"))

from peers_scoring import (
    Detection,
    crowdsec_detection,
    fail2ban_detection,
    false_positive_keys,
    load_attacks,
    parse_time,
    rempart_detection,
    score_attack,
    score_by_scenario,
)

T0 = parse_time("2026-11-20T10:00:00Z")


def truth(**over: object) -> dict[str, object]:
    attack: dict[str, object] = {
        "id": "mass_harvest-1",
        "scenario": "mass_harvest",
        "accounts": ["PH0042"],
        "ips": ["203.0.113.7"],
        "start": "2026-11-20T10:00:00Z",
        "end": "2026-11-20T11:00:00Z",
        "exposed": ["A", "B", "C", "D"],
        "exposed_timeline": [
            ["2026-11-20T10:00:10Z", "A"],
            ["2026-11-20T10:00:20Z", "B"],
            ["2026-11-20T10:05:00Z", "C"],
            ["2026-11-20T10:30:00Z", "D"],
        ],
    }
    attack.update(over)
    return {"attacks": [attack]}


def det(when: float, key: str, *names: str, rule: str = "r") -> Detection:
    return Detection("t", rule, when, key, frozenset(names))


def test_when_account_alerted_after_two_reads_then_two_records_exposed_before_alert() -> None:
    attack = load_attacks(truth())[0]
    score = score_attack(attack, [det(T0 + 20, "account:PH0042", "PH0042")])
    assert score.detected
    assert score.time_to_detect == 20
    assert score.exposed_before == 2
    assert score.exposed_total == 4


def test_when_no_alert_names_the_attack_then_missed_with_everything_exposed() -> None:
    attack = load_attacks(truth())[0]
    score = score_attack(attack, [det(T0 + 5, "ip:198.51.100.1", "198.51.100.1")])
    assert not score.detected
    assert score.time_to_detect is None
    assert score.exposed_before == 4


def test_when_attack_account_alerted_before_start_then_neither_detection_nor_false_positive() -> (
    None
):
    attacks = load_attacks(truth())
    early = det(T0 - 3600, "account:PH0042", "PH0042")
    assert not score_attack(attacks[0], [early]).detected
    assert false_positive_keys(attacks, [early]) == set()


def test_when_alerts_name_unrelated_entities_then_each_distinct_entity_is_one_false_positive() -> (
    None
):
    attacks = load_attacks(truth())
    dets = [
        det(T0, "ip:198.51.100.1", "198.51.100.1"),
        det(T0 + 9, "ip:198.51.100.1", "198.51.100.1", rule="other"),
        det(T0, "account:MD0001", "MD0001"),
        det(T0, "ip:203.0.113.7", "203.0.113.7"),
    ]
    assert false_positive_keys(attacks, dets) == {"ip:198.51.100.1", "account:MD0001"}


def test_when_a_record_is_read_twice_then_it_is_exposed_once() -> None:
    attack = load_attacks(
        truth(exposed_timeline=[["2026-11-20T10:00:10Z", "A"], ["2026-11-20T10:00:11Z", "A"]])
    )[0]
    assert attack.exposed_total == 1
    assert score_attack(attack, [det(T0 + 60, "ip:203.0.113.7", "203.0.113.7")]).exposed_before == 1


def test_when_several_detections_then_earliest_sets_time_and_all_rules_listed() -> None:
    attack = load_attacks(truth())[0]
    score = score_attack(
        attack,
        [
            det(T0 + 400, "ip:203.0.113.7", "203.0.113.7", rule="late"),
            det(T0 + 15, "account:PH0042", "PH0042", rule="early"),
        ],
    )
    assert score.time_to_detect == 15
    assert score.exposed_before == 1
    assert score.rules == ("early", "late")


def test_when_scenario_has_two_attacks_and_one_is_missed_then_one_of_two_detected() -> None:
    data = truth()
    second = dict(data["attacks"][0])  # type: ignore[index]
    second.update(id="mass_harvest-2", accounts=["PH0099"], ips=["203.0.113.99"])
    data["attacks"].append(second)  # type: ignore[attr-defined]
    [summary] = score_by_scenario(load_attacks(data), [det(T0 + 20, "account:PH0042", "PH0042")])
    assert (summary.attacks, summary.detected, summary.exposed_before, summary.exposed_total) == (
        2,
        1,
        2 + 4,
        8,
    )


def test_rempart_campaign_alert_matches_through_its_ips() -> None:
    alert = {
        "rule": "stuffing",
        "entity_type": "campaign",
        "entity": "c-1",
        "accounts": [],
        "ips": ["203.0.113.7", "198.51.100.3"],
        "detected_at": "2026-11-20T10:01:00Z",
    }
    d = rempart_detection(alert)
    assert d.key == "campaign:c-1" and d.time == T0 + 60
    assert score_attack(load_attacks(truth())[0], [d]).detected


def test_fail2ban_ban_line_is_keyed_by_jail_kind() -> None:
    d = fail2ban_detection(f"rempart-reads-account\tPH0042\t{T0 + 30:.0f}\t41\n")
    assert (d.key, d.time, d.rule) == ("account:PH0042", T0 + 30, "rempart-reads-account")
    assert (
        fail2ban_detection(f"rempart-login-ip\t203.0.113.7\t{T0:.0f}\t10").key == "ip:203.0.113.7"
    )


def test_crowdsec_alert_uses_scope_value_or_event_names_when_empty() -> None:
    d = crowdsec_detection("rempart/harvest", "account", "PH0042", "2026-11-20 10:02:00+00:00")
    assert (d.key, d.time, d.names) == ("account:PH0042", T0 + 120, frozenset({"PH0042"}))
    site = crowdsec_detection(
        "rempart/site", "Ip", "", "2026-11-20 10:00:00+00:00", ["203.0.113.7", "PH0731"]
    )
    assert site.names == frozenset({"203.0.113.7"})  # the source it accuses
    assert site.targets == frozenset({"PH0731"})  # an account that source tried
    insider = load_attacks(truth(scenario="insider", accounts=["PH0731"], ips=["192.0.2.1"]))
    assert not score_attack(insider[0], [site]).detected


@given(
    st.lists(st.integers(min_value=0, max_value=7200), max_size=40),
    st.integers(min_value=0, max_value=8000),
)
def test_exposed_before_never_exceeds_total_and_grows_with_detection_time(
    offsets: list[int], at: int
) -> None:
    timeline = [
        [f"2026-11-20T{10 + o // 3600:02d}:{o % 3600 // 60:02d}:{o % 60:02d}Z", f"id{i % 7}"]
        for i, o in enumerate(offsets)
    ]
    attack = load_attacks(truth(exposed_timeline=timeline))[0]
    earlier = score_attack(attack, [det(T0 + at, "account:PH0042", "PH0042")])
    later = score_attack(attack, [det(T0 + at + 60, "account:PH0042", "PH0042")])
    assert 0 <= earlier.exposed_before <= later.exposed_before <= attack.exposed_total


def test_when_only_some_attack_entities_are_alerted_then_coverage_counts_them() -> None:
    attack = load_attacks(truth(accounts=["PH0042", "PH0043", "PH0044"]))[0]
    score = score_attack(
        attack,
        [
            det(T0 + 10, "account:PH0042", "PH0042"),
            det(T0 + 99, "account:PH0044", "PH0044"),
            det(T0 - 5, "account:PH0043", "PH0043"),
        ],
    )
    assert (score.entities_named, score.entities_total) == (2, 4)


def _rempart_alert(**over: object) -> dict[str, object]:
    alert: dict[str, object] = {
        "rule": "TP-AUTH-002",
        "entity_type": "ip",
        "entity": "198.51.100.9",
        "accounts": [],
        "ips": [],
        "targets": ["PH0042", "MD0001"],
        "detected_at": "2026-11-20T10:01:00Z",
    }
    alert.update(over)
    return alert


def test_accounts_an_attacker_tried_detect_a_login_attack_on_them_and_nothing_else() -> None:
    """A spraying alert lists the accounts it tried: it detects the spraying of those accounts,
    not an insider whose account happened to be among them (it did in the 1M peers log)."""
    spraying = rempart_detection(_rempart_alert())
    sprayed = truth(scenario="password_spraying", ips=["198.51.100.99"])
    assert score_attack(load_attacks(sprayed)[0], [spraying]).detected
    insider = load_attacks(truth(scenario="insider", ips=["192.0.2.1"]))
    assert not score_attack(insider[0], [spraying]).detected
    assert false_positive_keys(insider, [spraying]) == {"ip:198.51.100.9"}
    both = load_attacks({"attacks": sprayed["attacks"] + truth(scenario="insider")["attacks"]})
    assert false_positive_keys(both, [spraying]) == set()
    accused = rempart_detection(_rempart_alert(entity_type="account", entity="PH0042"))
    assert score_attack(insider[0], [accused]).detected  # the account itself accused


def test_an_account_a_login_attack_tried_is_its_victim_only_while_it_runs() -> None:
    """A distributed stuffing run tries every account of the portal: an account accused days
    after it ended is a false positive, not a late detection of it (the mixed 1M peers log
    credited two such risk alerts to its stuffing). The account it got into stays its own."""
    stuffing = load_attacks(
        truth(
            scenario="stuffing_distributed",
            accounts=["PH0042", "PH0043"],
            compromised=["PH0043"],
            ips=["198.51.100.99"],
        )
    )
    end = parse_time("2026-11-20T11:00:00Z")
    during = det(T0 + 60, "account:PH0042", "PH0042")
    days_after = det(end + 3 * 86400, "account:PH0042", "PH0042")
    taken_over = det(end + 3 * 86400, "account:PH0043", "PH0043")
    assert score_attack(stuffing[0], [during]).detected
    assert not score_attack(stuffing[0], [days_after]).detected
    assert false_positive_keys(stuffing, [days_after]) == {"account:PH0042"}
    assert score_attack(stuffing[0], [taken_over]).detected
    assert false_positive_keys(stuffing, [during, taken_over]) == set()
    tried_list = rempart_detection(_rempart_alert(detected_at="2026-11-23T10:00:00Z"))
    assert not score_attack(stuffing[0], [tried_list]).detected
    assert score_attack(stuffing[0], [det(end + 3000, "account:PH0042", "PH0042")]).detected
