"""Affected people and compromise windows on a hand-built archive."""

from __future__ import annotations

import csv
from pathlib import Path

from cases_helpers import BOT_UA, DAY, HOUR, LEGIT_UA, T0, Log, make_alert

LEGIT_IP = "192.0.2.10"
BOT_IP = "203.0.113.7"


def harvest_log() -> tuple[Log, set[str], float]:
    """PH0001 works normally for 20 days, then is phished: a login from a new network and
    client at day 20 08:00, a harvest 09:00-10:00 of 200 new people plus P3 (served before),
    while the pharmacist keeps working from the usual network (P5 again, and new P60)."""
    log = Log()
    for day in range(20):
        base = T0 + day * DAY + 9 * HOUR
        log.login("PH0001", base, LEGIT_IP, LEGIT_UA)
        for i in range(10):
            log.read(
                "PH0001", f"k1.P{(day * 10 + i) % 50}", base + 60 * (i + 1), LEGIT_IP, LEGIT_UA
            )
    attack_day = T0 + 20 * DAY
    login_at = attack_day + 8 * HOUR
    log.login("PH0001", attack_day + 7 * HOUR, BOT_IP, BOT_UA, ok=False)
    log.login("PH0001", login_at, BOT_IP, BOT_UA)
    exposed = set()
    for i in range(200):
        tok = f"k1.Q{i}"
        log.read("PH0001", tok, attack_day + 9 * HOUR + 18 * i, BOT_IP, BOT_UA)
        exposed.add(tok)
    log.read("PH0001", "k1.P3", attack_day + 9.5 * HOUR, BOT_IP, BOT_UA)
    log.read("PH0001", "k1.Q999", attack_day + 9.6 * HOUR, BOT_IP, BOT_UA, ok=False)  # 404
    exposed.add("k1.P3")
    log.login("PH0001", attack_day + 9 * HOUR, LEGIT_IP, LEGIT_UA)
    log.read("PH0001", "k1.P5", attack_day + 9.2 * HOUR, LEGIT_IP, LEGIT_UA)
    log.read("PH0001", "k1.P60", attack_day + 9.3 * HOUR, LEGIT_IP, LEGIT_UA)
    # another pharmacy reads Q1 the same morning: not this incident's exposure
    log.read("PH0002", "k1.Q1", attack_day + 9.4 * HOUR, "198.51.100.4", LEGIT_UA)
    return log, exposed, login_at


def harvest_alert():
    attack_day = T0 + 20 * DAY
    return make_alert(
        "harvest.distinct_beneficiaries",
        "PH0001",
        attack_day + 9 * HOUR,
        attack_day + 10 * HOUR,
        accounts=["PH0001"],
        ips=[BOT_IP],
        records=150,
    )


def test_when_account_is_phished_then_affected_are_exactly_the_people_the_attacker_read(
    cases_factory,
):
    log, exposed, _ = harvest_log()
    cases = cases_factory(log.events)
    result = cases.store.open_from_alerts([harvest_alert()], actor="analyst")
    affected = cases.affected(result.created[0])
    assert affected.tokens == exposed
    assert affected.count == 201
    assert affected.records == 201
    assert affected.people_by_category["nir"] == 201
    assert set(affected.people_by_category) == {
        "identite",
        "sexe",
        "date_naissance",
        "nir",
        "organisme_complementaire",
        "garanties",
    }


def test_window_starts_at_the_first_login_from_the_new_network_before_the_harvest(cases_factory):
    log, _, login_at = harvest_log()
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    (window,) = cases.windows(inc)
    # the failed attempt at 07:00 is the actor's first event: the window opens there
    assert window.start == login_at - HOUR
    assert window.actor_pairs == frozenset({(BOT_IP, BOT_UA)})
    assert any("203.0.113.0/24" in r for r in window.reasoning)
    # ... and closes at the actor's last event, the 200th read at 09:59:42
    assert window.end == T0 + 20 * DAY + 9 * HOUR + 18 * 199


def test_when_excluding_people_served_before_then_the_known_patient_is_left_out(cases_factory):
    log, exposed, _ = harvest_log()
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    affected = cases.affected(inc, exclude_served_before=True)
    assert affected.tokens == exposed - {"k1.P3"}
    assert affected.excluded == 1


def test_account_attribution_counts_every_disclosure_of_the_account_in_the_window(cases_factory):
    log, exposed, _ = harvest_log()
    cases = cases_factory(log.events, attribution="account")
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    assert cases.affected(inc).tokens == exposed | {"k1.P5", "k1.P60"}


def test_when_analyst_narrows_the_window_then_affected_follows_and_the_change_is_audited(
    cases_factory,
):
    log, _, _ = harvest_log()
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    start = T0 + 20 * DAY + 9 * HOUR
    cases.store.set_window(
        inc,
        "PH0001",
        start,
        start + 18 * 9.5,
        actor="alice",
        reason="proxy logs show the session ended",
    )
    affected = cases.affected(inc)
    assert affected.tokens == {f"k1.Q{i}" for i in range(10)}
    assert affected.windows[0].origin == "analyst"
    trail = cases.store.audit_trail(inc)
    assert trail[-1].action == "incident.window" and trail[-1].actor == "alice"
    assert trail[-1].details["reason"] == "proxy logs show the session ended"


def test_affected_export_carries_tokens_and_counts(cases_factory, tmp_path: Path):
    log, exposed, _ = harvest_log()
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    out = tmp_path / "affected.csv"
    assert cases.affected(inc).write_csv(out) == 201
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["token"] for r in rows} == exposed
    assert all(r["records"] == "1" and r["accounts"] == "PH0001" for r in rows)


def test_when_no_archive_exists_then_window_comes_from_alerts_and_nobody_is_listed(cases_factory):
    cases = cases_factory(None)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    affected = cases.affected(inc)
    assert affected.count == 0
    assert "aucun événement archivé" in affected.windows[0].reasoning[1]


def test_practitioner_on_the_move_is_not_the_actor_but_a_harvest_from_a_new_network_is(
    cases_factory,
):
    """A usual client on a new network reading known patients is the practitioner on the
    move; the same client reading dozens of strangers from a new network is harvesting."""
    log, exposed, _ = harvest_log()
    day = T0 + 20 * DAY
    for i in range(5):  # phone on a mobile network, reading usual patients
        log.read("PH0001", f"k1.P{i}", day + 11 * HOUR + i * 60, "92.184.3.7", LEGIT_UA)
    for i in range(30):  # residential proxy abroad with a browser-like client
        tok = f"k1.S{i}"
        log.read("PH0001", tok, day + 12 * HOUR + i * 30, "186.15.21.195", LEGIT_UA)
        exposed.add(tok)
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    (window,) = cases.windows(inc)
    assert ("92.184.3.7", LEGIT_UA) not in window.actor_pairs
    assert ("186.15.21.195", LEGIT_UA) in window.actor_pairs
    assert any("en déplacement" in r for r in window.reasoning)
    assert cases.affected(inc).tokens == exposed


def test_timeline_shows_logins_network_changes_read_rate_and_response_decisions(cases_factory):
    from sqlalchemy import insert

    from rempart.respond.tables import DecisionRow

    log, _, login_at = harvest_log()
    cases = cases_factory(log.events)
    inc = cases.store.open_from_alerts([harvest_alert()], actor="a").created[0]
    with cases.sessions.begin() as s:
        s.execute(insert(DecisionRow).values(
            id="d-1", scope="account", value="PH0001", type="block", state="active",
            created=login_at + 2.5 * HOUR, expires=login_at + 30 * HOUR, reason="harvest",
            origin="policy", alert_id=None, level=0,
        ))  # fmt: skip
    tl = cases.timeline(inc)
    kinds = [(e.kind, e.text) for e in tl.entries]
    assert ("login_failure", f"PH0001: 1 failed login(s) from {BOT_IP}") in kinds
    assert any(k == "login" and BOT_IP in t and "[actor]" in t for k, t in kinds)
    assert any(k == "network" and "203.0.113.0/24" in t for k, t in kinds)
    assert any(k == "client" and BOT_UA in t for k, t in kinds)
    assert any(k == "decision" and "block account PH0001" in t for k, t in kinds)
    assert any(k == "alert" for k, _ in kinds)
    rates = {(h, who): (actor, other) for h, who, actor, other in tl.read_rate}
    nine = T0 + 20 * DAY + 9 * HOUR
    assert rates[(nine, "PH0001")] == (201, 2)  # 200 + P3 by the actor; P5, P60 by the user
