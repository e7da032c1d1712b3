from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from respond_helpers import FakeClock

from rempart.respond.decisions import Decision, DecisionType, Rate, Scope, new_decision_id
from rempart.respond.enforce import Enforcer, TokenBucket
from rempart.respond.middleware import RempartMiddleware
from rempart.respond.store import DecisionStore


def portal(enforcer: Enforcer, **kw) -> TestClient:
    app = FastAPI()

    @app.get("/api/v1/me")
    def me() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/api/v1/actes")
    def claim() -> dict[str, str]:
        return {"created": "yes"}

    @app.post("/auth/mfa")
    def mfa() -> dict[str, str]:
        return {"mfa": "ok"}

    app.add_middleware(RempartMiddleware, enforcer=enforcer, **kw)
    return TestClient(app)


def add(
    store: DecisionStore, scope: Scope, value: str, dtype: DecisionType, rate: Rate | None = None
) -> Decision:
    now = store.clock()
    return store.add(
        Decision(
            new_decision_id(), scope, value, dtype, now, now + 600, "t", "analyst:t", rate=rate
        )
    )


def test_middleware_blocks_the_decided_account_and_lets_others_through(store, clock) -> None:
    client = portal(Enforcer(store.index, clock))
    d = add(store, Scope.ACCOUNT, "PH0042", DecisionType.BLOCK)
    r = client.get("/api/v1/me", auth=("PH0042", "secret"))
    assert r.status_code == 403 and r.headers["x-rempart-decision-id"] == d.id
    assert client.get("/api/v1/me", auth=("PH0043", "secret")).json() == {"ok": "yes"}
    assert client.get("/api/v1/me").status_code == 200  # anonymous: no account decision applies


def test_middleware_applies_read_only_and_session_decisions(store, clock) -> None:
    client = portal(Enforcer(store.index, clock))
    add(store, Scope.ACCOUNT, "PH1", DecisionType.READ_ONLY)
    assert client.get("/api/v1/me", auth=("PH1", "x")).status_code == 200
    assert client.post("/api/v1/actes", auth=("PH1", "x")).status_code == 403
    add(store, Scope.SESSION, "stolen", DecisionType.STEP_UP)
    client.cookies.set("sid", "stolen")
    r = client.get("/api/v1/me", auth=("PH2", "x"))
    assert r.status_code == 401 and "Rempart-StepUp" in r.headers["www-authenticate"]


def test_middleware_throttle_uses_a_real_token_bucket(store, clock: FakeClock) -> None:
    client = portal(Enforcer(store.index, clock))
    add(store, Scope.ACCOUNT, "PH9", DecisionType.THROTTLE, Rate(per_second=1.0, burst=3))
    got = [client.get("/api/v1/me", auth=("PH9", "x")).status_code for _ in range(5)]
    assert got == [200, 200, 200, 429, 429]
    clock.advance(1.0)
    assert client.get("/api/v1/me", auth=("PH9", "x")).status_code == 200
    assert client.get("/api/v1/me", auth=("PH9", "x")).status_code == 429


def test_token_bucket_admits_exactly_rate_over_time() -> None:
    bucket = TokenBucket(Rate(per_second=10.0, burst=5), now=0.0)
    admitted = 0
    t = 0.0
    for _ in range(10_000):  # 100 requests/s offered for 100 s
        t += 0.01
        if bucket.take(t) == 0.0:
            admitted += 1
    assert 1000 <= admitted <= 1005  # 10/s for 100 s, plus the initial burst
    assert bucket.take(t) == pytest.approx(0.1, abs=0.1)


def test_remote_checker_fails_open_or_closed_when_rempart_is_down() -> None:
    from rempart.respond.middleware import RemoteChecker

    for fail_open, expected in ((True, 200), (False, 503)):
        app = FastAPI()

        @app.get("/x")
        def x() -> dict[str, str]:
            return {}

        checker = RemoteChecker("http://127.0.0.1:9", "rmp_x_y", timeout=0.2)
        app.add_middleware(RempartMiddleware, checker=checker, fail_open=fail_open)
        started = time.monotonic()
        assert TestClient(app).get("/x", auth=("PH1", "p")).status_code == expected
        assert time.monotonic() - started < 5


def test_step_up_lets_the_mfa_request_through_but_not_the_rest(store, clock) -> None:
    client = portal(Enforcer(store.index, clock))
    add(store, Scope.ACCOUNT, "PH5", DecisionType.STEP_UP)
    assert client.get("/api/v1/me", auth=("PH5", "x")).status_code == 401
    assert client.post("/auth/mfa", auth=("PH5", "x")).status_code == 200
    add(store, Scope.ACCOUNT, "PH6", DecisionType.BLOCK)
    assert client.post("/auth/mfa", auth=("PH6", "x")).status_code == 403  # a block still holds
