from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from respond_helpers import T0, FakeClock
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from rempart.errors import InputError, NotFoundError
from rempart.respond.decisions import (
    CheckRequest,
    Decision,
    DecisionIndex,
    DecisionState,
    DecisionType,
    Rate,
    Scope,
    new_decision_id,
)
from rempart.respond.store import DecisionStore


def decision(
    scope: Scope,
    value: str,
    dtype: DecisionType = DecisionType.BLOCK,
    *,
    created: float = T0,
    duration: float = 3600,
    origin: str = "analyst:alice",
) -> Decision:
    return Decision(
        new_decision_id(), scope, value, dtype, created, created + duration, "test", origin
    )


def test_block_is_enforced_until_exactly_its_expiry(store: DecisionStore, clock: FakeClock) -> None:
    d = store.add(decision(Scope.ACCOUNT, "PH0042", duration=600))
    req = CheckRequest(account="PH0042", ip="198.51.100.1")
    assert store.index.strongest(req, clock()) == d
    assert store.index.strongest(req, T0 + 599.999) == d
    assert store.index.strongest(req, T0 + 600) is None
    assert store.index.strongest(CheckRequest(account="PH0043"), clock()) is None


def test_revoked_decision_stops_being_enforced_and_is_audited(
    store: DecisionStore, clock: FakeClock
) -> None:
    d = store.add(decision(Scope.ACCOUNT, "PH0042"))
    clock.advance(10)
    revoked = store.revoke(d.id, by="analyst:bob", reason="false positive")
    assert revoked.state is DecisionState.REVOKED and revoked.revoked_at == T0 + 10
    assert store.index.strongest(CheckRequest(account="PH0042"), clock()) is None
    assert store.get(d.id).revoked_by == "analyst:bob"
    actions = [(e.actor, e.action) for e in store.audit.entries(subject=d.id)]
    assert actions == [("analyst:alice", "decision.active"), ("analyst:bob", "decision.revoked")]
    with pytest.raises(InputError):
        store.revoke(d.id, by="analyst:bob")
    with pytest.raises(NotFoundError):
        store.revoke("d-missing", by="analyst:bob")


def test_index_is_rebuilt_from_the_database_on_restart(sessions, clock: FakeClock) -> None:
    first = DecisionStore(sessions, clock)
    kept = first.add(decision(Scope.RANGE, "203.0.113.0/24"))
    first.add(decision(Scope.ACCOUNT, "PH1", duration=5))
    gone = first.add(decision(Scope.ACCOUNT, "PH2"))
    first.revoke(gone.id, by="analyst:x")
    clock.advance(5)
    second = DecisionStore(sessions, clock)
    assert len(second.index) == 1
    assert second.index.strongest(CheckRequest(ip="203.0.113.200"), clock()) == kept


def test_strongest_decision_wins_across_scopes(store: DecisionStore, clock: FakeClock) -> None:
    store.add(decision(Scope.IP, "203.0.113.7", DecisionType.STEP_UP))
    blk = store.add(decision(Scope.SESSION, "s-1", DecisionType.BLOCK))
    store.add(decision(Scope.ACCOUNT, "PH1", DecisionType.NOTIFY))
    req = CheckRequest(account="PH1", ip="203.0.113.7", session="s-1")
    assert store.index.strongest(req, clock()) == blk
    only_notify = CheckRequest(account="PH1")
    assert store.index.strongest(only_notify, clock()) is None


def test_organization_decision_applies_to_its_accounts(
    store: DecisionStore, clock: FakeClock
) -> None:
    d = store.add(decision(Scope.ORGANIZATION, "ORG-7", DecisionType.READ_ONLY))
    store.index.organization_of["PH0042"] = "ORG-7"
    assert store.index.strongest(CheckRequest(account="PH0042"), clock()) == d
    assert store.index.strongest(CheckRequest(account="PH0043"), clock()) is None


def test_invalid_values_are_refused_with_a_clear_error() -> None:
    from rempart.respond.decisions import normalise_value

    with pytest.raises(InputError, match="not a valid ip"):
        normalise_value(Scope.IP, "300.1.1.1")
    assert normalise_value(Scope.RANGE, "10.1.2.3/16") == "10.1.0.0/16"
    assert Rate.parse("60/min").per_second == 1.0
    with pytest.raises(InputError):
        Rate.parse("fast")


def test_audit_trail_is_append_only_and_tampering_is_detected(
    store: DecisionStore, sessions
) -> None:
    for i in range(5):
        store.add(decision(Scope.ACCOUNT, f"PH{i}"))
    assert store.audit.verify().ok and store.audit.verify().records == 5
    with sessions() as s, pytest.raises(DatabaseError, match="append-only"):
        s.execute(text("UPDATE respond_audit SET actor='mallory' WHERE seq=2"))
    # Someone with file access removes the triggers and rewrites history: the chain breaks.
    with sessions.begin() as s:
        s.execute(text("DROP TRIGGER respond_audit_no_update"))
        s.execute(text("UPDATE respond_audit SET actor='mallory' WHERE seq=3"))
    report = store.audit.verify()
    assert not report.ok and report.first_bad_seq == 3 and "altered" in (report.problem or "")


@settings(max_examples=60, deadline=None)
@given(
    nets=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)), min_size=1, max_size=6),
    probes=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20),
)
def test_range_index_agrees_with_ipaddress_membership(nets, probes) -> None:
    index = DecisionIndex()
    networks = []
    for addr, plen in nets:
        net = ipaddress.ip_network(f"{ipaddress.IPv4Address(addr)}/{plen}", strict=False)
        networks.append(net)
        index.add(decision(Scope.RANGE, str(net)))
    # probe both random addresses and the networks' own edges
    candidates = [ipaddress.IPv4Address(p) for p in probes]
    candidates += [n.network_address for n in networks] + [n.broadcast_address for n in networks]
    for ip in candidates:
        expected = any(ip in n for n in networks)
        got = bool(index.matching(CheckRequest(ip=str(ip)), T0))
        assert got == expected, (ip, networks)


def test_changes_made_by_another_process_are_picked_up_by_sync(sessions, clock) -> None:
    server = DecisionStore(sessions, clock)
    cli = DecisionStore(sessions, clock)  # e.g. `rempart decisions add` in another process
    server.add(decision(Scope.ACCOUNT, "PH1"))
    d = cli.add(decision(Scope.ACCOUNT, "PH2"))
    assert server.index.strongest(CheckRequest(account="PH2"), clock()) is None
    assert server.sync() == (1, 0)
    assert server.index.strongest(CheckRequest(account="PH2"), clock()) == d
    cli.revoke(d.id, by="analyst:carol")
    server.add(decision(Scope.ACCOUNT, "PH3"))  # both append to one audit chain
    assert server.sync() == (0, 1)
    assert server.index.strongest(CheckRequest(account="PH2"), clock()) is None
    report = server.audit.verify()
    assert report.ok and report.records == 4
