"""Incident grouping, lifecycle and the hash-chained audit trail."""

from __future__ import annotations

import sqlite3

import pytest
from cases_helpers import DAY, HOUR, T0, make_alert

from rempart.alerts import EntityType, Severity
from rempart.cases.incidents import IncidentError
from rempart.errors import NotFoundError


def test_alerts_on_the_same_account_make_one_incident_and_other_accounts_another(cases_factory):
    cases = cases_factory(None)
    a1 = make_alert("harvest", "PH0001", T0, T0 + HOUR, accounts=["PH0001"], ips=["203.0.113.7"])
    a2 = make_alert(
        "new_network",
        "PH0001",
        T0 - HOUR,
        T0,
        accounts=["PH0001"],
        ips=["203.0.113.7"],
        severity=Severity.MEDIUM,
    )
    b1 = make_alert("harvest", "PH0002", T0, T0 + HOUR, accounts=["PH0002"], ips=["203.0.113.7"])
    result = cases.store.open_from_alerts([a1, a2, b1], actor="a")
    assert len(result.created) == 2
    incidents = {tuple(i.accounts): i for i in cases.store.list_incidents()}
    assert {a.id for a in incidents[("PH0001",)].alerts} == {a1.id, a2.id}
    assert incidents[("PH0001",)].severity == "high"
    assert incidents[("PH0001",)].first_seen == T0 - HOUR


def test_campaign_alert_naming_several_accounts_merges_them_into_one_incident(cases_factory):
    cases = cases_factory(None)
    per_account = [
        make_alert("harvest", f"PH000{i}", T0 + i, T0 + HOUR, accounts=[f"PH000{i}"], ips=[])
        for i in range(1, 4)
    ]
    campaign = make_alert(
        "campaign.shared_client",
        "ua:python-requests",
        T0 + 10,
        T0 + HOUR,
        accounts=["PH0001", "PH0002", "PH0003"],
        ips=["203.0.113.7"],
        entity_type=EntityType.CAMPAIGN,
        severity=Severity.CRITICAL,
    )
    result = cases.store.open_from_alerts([*per_account, campaign], actor="a")
    assert len(result.created) == 1
    inc = cases.store.get(result.created[0])
    assert inc.accounts == ["PH0001", "PH0002", "PH0003"]
    assert inc.severity == "critical"
    assert "3 accounts" in inc.title


def test_reading_the_same_alerts_twice_adds_nothing_and_updates_changed_counts(cases_factory):
    cases = cases_factory(None)
    a1 = make_alert("harvest", "PH0001", T0, T0 + HOUR, accounts=["PH0001"], ips=[])
    first = cases.store.open_from_alerts([a1], actor="a")
    a1.records_exposed = 999
    a1.last_seen = T0 + 2 * HOUR
    second = cases.store.open_from_alerts([a1], actor="a")
    assert second.created == [] and second.alerts_added == 0 and second.alerts_updated == 1
    inc = cases.store.get(first.created[0])
    assert inc.alerts[0].records_exposed == 999 and inc.last_seen == T0 + 2 * HOUR


def test_new_alert_weeks_later_or_after_closing_opens_a_new_incident(cases_factory):
    cases = cases_factory(None, merge_gap_days=7)
    a1 = make_alert("harvest", "PH0001", T0, T0 + HOUR, accounts=["PH0001"], ips=[])
    inc = cases.store.open_from_alerts([a1], actor="a").created[0]
    later = make_alert(
        "harvest", "PH0001", T0 + 30 * DAY, T0 + 30 * DAY, accounts=["PH0001"], ips=[]
    )
    assert len(cases.store.open_from_alerts([later], actor="a").created) == 1
    soon = make_alert(
        "harvest", "PH0001", T0 + 2 * HOUR, T0 + 3 * HOUR, accounts=["PH0001"], ips=[]
    )
    assert cases.store.open_from_alerts([soon], actor="a").updated == [inc]
    cases.store.transition(inc, "closed", actor="a", reason="false positive")
    again = make_alert("x", "PH0001", T0 + 4 * HOUR, T0 + 5 * HOUR, accounts=["PH0001"], ips=[])
    assert len(cases.store.open_from_alerts([again], actor="a").created) == 1


def test_lifecycle_moves_forward_and_each_change_is_audited_with_who_and_when(cases_factory):
    cases = cases_factory(None)
    inc = cases.store.open_from_alerts(
        [make_alert("h", "PH0001", T0, T0 + 1, accounts=["PH0001"], ips=[])], actor="bot"
    ).created[0]
    cases.store.transition(inc, "triage", actor="alice")
    cases.store.assign(inc, "bob", actor="alice")
    cases.store.add_note(inc, "called the pharmacy, password reset", actor="bob")
    contained = cases.store.transition(inc, "contained", actor="bob")
    assert contained.contained_at is not None and contained.assignee == "bob"
    with pytest.raises(IncidentError, match="cannot go to triage"):
        cases.store.transition(inc, "triage", actor="bob")
    cases.store.transition(inc, "closed", actor="bob")
    assert cases.store.transition(inc, "triage", actor="carol").status == "triage"
    trail = cases.store.audit_trail(inc)
    assert [e.action for e in trail] == [
        "incident.open",
        "incident.status",
        "incident.assign",
        "incident.note",
        "incident.status",
        "incident.status",
        "incident.status",
    ]
    assert [e.actor for e in trail][1:4] == ["alice", "alice", "bob"]
    assert all(e.at > 0 for e in trail)
    assert cases.store.verify_audit()[0]


def test_unknown_incident_is_a_clear_not_found_error(cases_factory):
    cases = cases_factory(None)
    with pytest.raises(NotFoundError, match="no incident 42"):
        cases.store.get(42)


def test_audit_trail_refuses_updates_and_detects_tampering(cases_factory, tmp_path):
    cases = cases_factory(None)
    inc = cases.store.open_from_alerts(
        [make_alert("h", "PH0001", T0, T0 + 1, accounts=["PH0001"], ips=[])], actor="bot"
    ).created[0]
    cases.store.add_note(inc, "first note", actor="alice")
    cases.store.add_note(inc, "second note", actor="alice")
    db = sqlite3.connect(tmp_path / "state.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE cases_audit SET actor='mallory' WHERE seq=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM cases_audit WHERE seq=3")
    # someone with raw file access drops the triggers and rewrites history
    db.execute("DROP TRIGGER cases_audit_no_update")
    db.execute('UPDATE cases_audit SET details=\'{"text": "nothing to see"}\' WHERE seq=2')
    db.commit()
    ok, reason = cases.store.verify_audit()
    assert not ok and "entry 2 was altered" in reason
