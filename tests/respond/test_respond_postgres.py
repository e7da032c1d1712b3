"""Decisions, policies, the audit chain and API tokens on a real PostgreSQL server."""

from __future__ import annotations

import uuid

import pytest
from respond_helpers import FakeClock, make_alert
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from rempart.alerts import Severity
from rempart.db import open_database
from rempart.respond.apitokens import ApiTokens, TokenScope
from rempart.respond.decisions import CheckRequest, DecisionState
from rempart.respond.policy import PolicyEngine
from rempart.respond.policy_spec import load_policy
from rempart.respond.settings import ResponseSettings, SafetyCaps
from rempart.respond.store import DecisionStore

pytestmark = pytest.mark.postgres


def test_store_policy_audit_and_tokens_work_on_postgresql(postgres_url: str) -> None:
    _, sessions = open_database(postgres_url)
    assert isinstance(sessions, sessionmaker)
    clock = FakeClock()
    server = DecisionStore(sessions, clock)
    cli = DecisionStore(sessions, clock)
    pe = PolicyEngine(
        load_policy("tiers-payant"),
        server,
        ResponseSettings(caps=SafetyCaps(max_auto_account_blocks_per_hour=2)),
    )
    suffix = uuid.uuid4().hex[:6]  # the database is shared by the session's tests
    states = []
    for i in range(3):
        out = pe.handle(
            make_alert(
                "TP-HARV-001", severity=Severity.CRITICAL, entity=f"PG{suffix}{i}", at=clock()
            )
        )
        states.append(out.decisions[0].state)
    assert states == [DecisionState.ACTIVE, DecisionState.ACTIVE, DecisionState.PENDING]
    first = server.query(value=f"PG{suffix}0")[0]
    assert server.index.strongest(CheckRequest(account=f"PG{suffix}0"), clock()) == first
    cli.revoke(first.id, by="analyst:pg")
    assert server.sync() == (0, 1)
    assert server.audit.verify().ok
    with sessions() as s, pytest.raises(DBAPIError, match="append-only"):
        s.execute(text("UPDATE respond_audit SET actor = 'mallory'"))
    secret, token = ApiTokens(sessions).create("pg", frozenset({TokenScope.ENFORCE}))
    verified = ApiTokens(sessions).verify(secret)
    assert verified is not None and verified.id == token.id
