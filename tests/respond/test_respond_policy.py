from __future__ import annotations

from pathlib import Path

import pytest
from respond_helpers import FakeClock, make_alert

from rempart.alerts import EntityType, Severity
from rempart.errors import ConfigError
from rempart.respond.decisions import CheckRequest, DecisionState, DecisionType, Scope
from rempart.respond.policy import CEILING_RULE_ID, PolicyEngine
from rempart.respond.policy_spec import load_policy, parse_policy
from rempart.respond.settings import ProtectedEntity, ResponseSettings, SafetyCaps
from rempart.respond.store import DecisionStore

POLICY = """
name: test
escalation: {factor: 4, max_duration: 1d, window: 30d}
rules:
  - name: harvest-block
    when: {severity: high, entity_types: [account], rules: ["harvest.*"]}
    then:
      - {scope: account, type: block, duration: 1h}
  - name: stuffing-ip
    when: {severity: high, entity_types: [ip]}
    then:
      - {scope: ip, type: block, duration: 15m}
  - name: medium-step-up
    when: {severity: medium, entity_types: [account]}
    then:
      - {scope: account, type: step_up, duration: 30m}
"""


def engine(store: DecisionStore, **settings) -> PolicyEngine:
    return PolicyEngine(parse_policy(POLICY, where="test"), store, ResponseSettings(**settings))


def test_when_harvest_alert_then_account_is_blocked_for_an_hour(store, clock) -> None:
    alert = make_alert()
    out = engine(store).handle(alert)
    [d] = out.decisions
    assert (d.scope, d.value, d.type, d.state) == (
        Scope.ACCOUNT,
        "PH0042",
        DecisionType.BLOCK,
        DecisionState.ACTIVE,
    )
    assert d.duration == 3600 and d.origin == "rule:harvest.distinct_beneficiaries"
    assert d.alert_id == alert.id
    assert store.index.strongest(CheckRequest(account="PH0042"), clock()) == d
    # Other accounts on the same IP are untouched.
    assert store.index.strongest(CheckRequest(account="PH0007", ip="203.0.113.7"), clock()) is None


def test_when_alert_is_updated_then_no_second_decision(store) -> None:
    pe = engine(store)
    alert = make_alert()
    assert len(pe.handle(alert).decisions) == 1
    alert.updates += 1
    alert.records_exposed += 50
    assert pe.handle(alert).decisions == []
    # a different rule on the same, already blocked account adds nothing either
    assert pe.handle(make_alert("harvest.velocity")).decisions == []


def test_when_unmatched_severity_then_nothing_is_decided(store) -> None:
    out = engine(store).handle(make_alert(severity=Severity.LOW))
    assert out.decisions == [] and len(store.index) == 0


def test_repeat_offender_gets_longer_decisions_up_to_the_maximum(store, clock: FakeClock) -> None:
    pe = engine(store)
    durations = []
    for _ in range(4):
        [d] = pe.handle(make_alert(at=clock())).decisions
        durations.append(d.duration)
        clock.advance(d.duration)  # expires exactly: the next offence is a new decision
    assert durations == [3600, 4 * 3600, 16 * 3600, 86400]


def test_simulation_records_decisions_but_enforces_nothing(store, clock) -> None:
    out = engine(store, simulation=True).handle(make_alert())
    [d] = out.decisions
    assert d.state is DecisionState.SIMULATED
    assert store.index.strongest(CheckRequest(account="PH0042"), clock()) is None
    assert store.query(state=DecisionState.SIMULATED)[0].id == d.id
    assert [e.action for e in store.audit.entries()] == ["decision.created"]


def test_ip_in_protected_hospital_nat_moves_to_account_step_up(store, clock) -> None:
    hospital = ProtectedEntity(name="CHU NAT", ranges=["10.20.0.0/16"])
    pe = engine(store, protected=[hospital])
    alert = make_alert(
        "stuffing.single_ip",
        entity_type=EntityType.IP,
        entity="10.20.3.4",
        accounts=["HP0001", "HP0002"],
        ips=["10.20.3.4"],
    )
    out = pe.handle(alert)
    got = sorted((d.scope, d.value, d.type) for d in out.decisions)
    assert got == [
        (Scope.ACCOUNT, "HP0001", DecisionType.BLOCK),
        (Scope.ACCOUNT, "HP0002", DecisionType.BLOCK),
    ]
    # the NAT itself is never blocked: a clinician behind it is fine
    assert store.index.strongest(CheckRequest(account="HP0099", ip="10.20.3.4"), clock()) is None
    # without accounts in the alert, the IP only gets a step-up
    out = pe.handle(
        make_alert(
            "stuffing.single_ip",
            entity_type=EntityType.IP,
            entity="10.20.9.9",
            accounts=[],
            ips=["10.20.9.9"],
        )
    )
    [d] = out.decisions
    assert (d.scope, d.type) == (Scope.IP, DecisionType.STEP_UP) and "protected" in d.reason


def test_ip_outside_protected_ranges_is_blocked(store) -> None:
    pe = engine(store, protected=[ProtectedEntity(name="CHU", ranges=["10.20.0.0/16"])])
    out = pe.handle(
        make_alert(
            "stuffing.single_ip", entity_type=EntityType.IP, entity="198.51.100.9", accounts=[]
        )
    )
    assert [(d.scope, d.type) for d in out.decisions] == [(Scope.IP, DecisionType.BLOCK)]


def test_protected_account_gets_step_up_instead_of_block(store) -> None:
    pe = engine(store, protected=[ProtectedEntity(name="urgences", accounts=["HP0001"])])
    [d] = pe.handle(make_alert(entity="HP0001")).decisions
    assert d.type is DecisionType.STEP_UP


def test_beyond_the_hourly_ceiling_blocks_wait_for_an_analyst(store, clock: FakeClock) -> None:
    pe = engine(store, caps=SafetyCaps(max_auto_account_blocks_per_hour=3))
    states, ceiling_alerts = [], []
    for i in range(5):
        out = pe.handle(make_alert(entity=f"PH{i:04d}"))
        states.append(out.decisions[0].state)
        ceiling_alerts += out.alerts
        clock.advance(60)
    assert states == [DecisionState.ACTIVE] * 3 + [DecisionState.PENDING] * 2
    assert {a.rule_id for a in ceiling_alerts} == {CEILING_RULE_ID}
    assert ceiling_alerts[0].severity is Severity.HIGH
    assert "ceiling" in ceiling_alerts[0].explanation and ceiling_alerts[-1].updates == 1
    pending = store.query(state=DecisionState.PENDING)
    assert len(pending) == 2
    assert store.index.strongest(CheckRequest(account="PH0003"), clock()) is None
    # an analyst approves one: it is enforced from now, for its full duration
    approved = store.approve(pending[0].id, by="analyst:alice")
    assert approved.created == clock() and approved.duration == 3600
    assert store.index.strongest(CheckRequest(account=approved.value), clock()) == approved
    rejected = store.reject(pending[1].id, by="analyst:alice", reason="legit pharmacy")
    assert rejected.state is DecisionState.REJECTED
    # an hour after the first blocks, automatic blocks are allowed again
    clock.advance(3600)
    [d] = pe.handle(make_alert(entity="PH0099")).decisions
    assert d.state is DecisionState.ACTIVE
    actors = [(e.actor, e.action) for e in store.audit.entries()]
    assert ("analyst:alice", "decision.approved") in actors
    assert ("analyst:alice", "decision.rejected") in actors
    assert store.audit.verify().ok


def test_policy_with_unknown_key_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match=r"rules.0.then.0.duraton: unknown key"):
        parse_policy(
            "name: x\nrules:\n  - name: a\n    then:\n      - {scope: account, "
            "type: block, duraton: 1h}\n",
            where="p.yaml",
        )
    with pytest.raises(ConfigError, match="throttle needs a rate"):
        parse_policy(
            "name: x\nrules:\n  - name: a\n    then:\n      - {scope: ip, type: throttle}\n",
            where="p.yaml",
        )


def test_policy_cannot_notify_a_channel_the_operator_did_not_configure(store) -> None:
    spec = parse_policy("name: x\nrules:\n  - name: a\n    notify: [evil-hook]\n", where="p")
    with pytest.raises(ConfigError, match="unknown channel"):
        PolicyEngine(spec, store, ResponseSettings(), channels=["soc"])


def test_shipped_tiers_payant_policy_blocks_harvest_and_steps_up_medium(
    store, tmp_path: Path
) -> None:
    pe = PolicyEngine(load_policy("tiers-payant"), store, ResponseSettings(), channels=["soc"])
    out = pe.handle(make_alert("TP-HARV-001", severity=Severity.CRITICAL, tags=[]))
    assert [(d.type, d.duration) for d in out.decisions] == [(DecisionType.BLOCK, 3600)]
    assert out.notifications and out.notifications[0].channels == ["soc"]
    out = pe.handle(make_alert("newip", severity=Severity.MEDIUM, entity="PH0100", tags=[]))
    assert [d.type for d in out.decisions] == [DecisionType.STEP_UP]
    # brute force on an account: step-up, never a lock-out of the practitioner
    out = pe.handle(make_alert("TP-AUTH-001", severity=Severity.HIGH, entity="PH0101", tags=[]))
    assert [d.type for d in out.decisions] == [DecisionType.STEP_UP]
    # stuffing from one address: the address is throttled, its accounts stepped up
    out = pe.handle(
        make_alert(
            "TP-AUTH-003",
            severity=Severity.CRITICAL,
            entity_type=EntityType.IP,
            entity="198.51.100.9",
            accounts=["PH0200"],
            tags=[],
        )
    )
    got = sorted((d.scope.value, d.type.value) for d in out.decisions)
    assert got == [("account", "step_up"), ("ip", "throttle")]
    missing = tmp_path / "none.yaml"
    with pytest.raises(ConfigError, match="not found"):
        load_policy(str(missing))


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rempart.errors import InputError  # noqa: E402
from rempart.respond.decisions import Rate  # noqa: E402
from rempart.respond.policy_spec import parse_duration  # noqa: E402


@given(n=st.integers(1, 10_000), unit=st.sampled_from(["s", "m", "h", "d", "w"]))
def test_durations_round_trip(n: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{n}{unit}") == n * factor


@given(st.text(max_size=12))
def test_bad_durations_and_rates_give_a_clear_error_never_a_crash(text: str) -> None:
    for parse in (parse_duration, Rate.parse):
        try:
            value = parse(text)
        except InputError as exc:
            assert str(exc)
        else:
            assert value is not None


def test_non_finite_rates_are_refused() -> None:
    for text in ("nan/s", "inf/min", "-5/s", "0/h", "5/fortnight"):
        with pytest.raises(InputError):
            Rate.parse(text)


def test_an_alert_revoked_by_an_analyst_is_not_decided_again_after_a_restart(store) -> None:
    alert = make_alert()
    [d] = engine(store).handle(alert).decisions
    store.revoke(d.id, by="analyst:alice", reason="false positive")
    restarted = engine(store)  # fresh in-memory state, same database
    assert restarted.handle(alert).decisions == []
    # a new alert on the same account is a new offence
    assert len(restarted.handle(make_alert()).decisions) == 1
