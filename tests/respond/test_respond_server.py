from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from respond_helpers import ecs_line, harvest_lines, make_config, nir

from rempart.protect.tokens import Tokenizer, generate_key
from rempart.respond.apitokens import TokenScope
from rempart.respond.server import create_app
from rempart.respond.service import ResponseService
from rempart.respond.settings import ServerSettings

NOW = time.time()


def make_service(tmp_path: Path, **server) -> ResponseService:
    cfg = make_config(tmp_path, server=ServerSettings(**server))
    return ResponseService(cfg, tokenizer=Tokenizer(generate_key()))


def auth(service: ResponseService, *scopes: TokenScope, name: str = "alice") -> dict[str, str]:
    text, _ = service.tokens.create(name, frozenset(scopes))
    return {"Authorization": f"Bearer {text}"}


def wait_for(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def service(tmp_path: Path) -> ResponseService:
    return make_service(tmp_path)


def test_when_account_harvests_over_http_then_check_blocks_it_but_not_its_neighbours(
    service: ResponseService,
) -> None:
    with TestClient(create_app(service)) as client:
        ingest = auth(service, TokenScope.INGEST)
        enforce = auth(service, TokenScope.ENFORCE)
        admin = auth(service, TokenScope.ADMIN)
        lines = harvest_lines("PH0042", "203.0.113.7", 80, start=NOW - 60)
        lines.insert(3, "this is not a log line")
        r = client.post("/v1/events", content="\n".join(lines).encode(), headers=ingest)
        assert r.status_code == 202 and r.json()["accepted"] == 80 and r.json()["rejected"] == 1

        def status(account: str) -> int:
            return client.get(
                "/v1/decisions/check",
                params={"account": account, "ip": "203.0.113.7"},
                headers=enforce,
            ).status_code

        assert wait_for(lambda: status("PH0042") == 403)
        r = client.get("/v1/decisions/check", headers=enforce | {"X-Rempart-Account": "PH0042"})
        assert r.status_code == 403 and r.headers["X-Rempart-Decision"] == "block"
        decision_id = r.headers["X-Rempart-Decision-Id"]
        assert status("PH0007") == 204  # same IP, other practitioner: unaffected
        alerts = client.get("/v1/alerts", headers=admin).json()
        assert any(a["rule"].startswith("TP-HARV") and a["entity"] == "PH0042" for a in alerts)
        d = client.get(f"/v1/decisions/{decision_id}", headers=admin).json()
        assert d["origin"].startswith("rule:TP-HARV") and d["state"] == "active"
        # an analyst lifts it: enforced no more, and the audit trail says who
        r = client.delete(
            f"/v1/decisions/{decision_id}", params={"reason": "verified"}, headers=admin
        )
        assert r.status_code == 200 and r.json()["revoked_by"] == "analyst:alice"
        assert status("PH0042") == 204
        audit = client.get("/v1/audit", headers=admin).json()
        assert audit["chain_ok"] and audit["entries"][-1]["action"] == "decision.revoked"


def test_tokens_are_required_and_scoped(service: ResponseService) -> None:
    with TestClient(create_app(service)) as client:
        assert client.get("/v1/decisions").status_code == 401
        ingest = auth(service, TokenScope.INGEST)
        assert client.get("/v1/decisions", headers=ingest).status_code == 403
        bad = {"Authorization": "Bearer rmp_0000_forged"}
        assert client.post("/v1/events", content=b"x", headers=bad).status_code == 401
        # a wrong token on the check is not a verdict: nginx treats it as Rempart unavailable
        assert client.get("/v1/decisions/check", headers=bad).status_code == 503
        tok = service.tokens.list()[0]
        service.tokens.revoke(tok.id)
        assert client.post("/v1/events", content=b"", headers=ingest).status_code == 401


def test_manual_decisions_step_up_read_only_and_validation(service: ResponseService) -> None:
    with TestClient(create_app(service)) as client:
        admin = auth(service, TokenScope.ADMIN)
        enforce = auth(service, TokenScope.ENFORCE)
        r = client.post(
            "/v1/decisions",
            headers=admin,
            json={
                "scope": "account",
                "value": "PH0001",
                "type": "step_up",
                "duration": "10m",
                "reason": "suspicious new device",
            },
        )
        assert r.status_code == 201
        r = client.get(
            "/v1/decisions/check", params={"account": "PH0001", "session": "s9"}, headers=enforce
        )
        assert r.status_code == 401 and r.headers["X-Rempart-Decision"] == "step_up"
        # the practitioner completes MFA in that session: the step-up is satisfied
        ingest = auth(service, TokenScope.INGEST)
        mfa = ecs_line(
            "PH0001", "192.0.2.1", path="/auth/mfa", method="POST", session="s9", ts=time.time() + 1
        )
        assert client.post("/v1/events", content=mfa.encode(), headers=ingest).status_code == 202
        assert wait_for(
            lambda: (
                client.get(
                    "/v1/decisions/check",
                    params={"account": "PH0001", "session": "s9"},
                    headers=enforce,
                ).status_code
                == 204
            )
        )
        other_session = client.get(
            "/v1/decisions/check", params={"account": "PH0001", "session": "s10"}, headers=enforce
        )
        assert other_session.status_code == 401
        client.post(
            "/v1/decisions",
            headers=admin,
            json={
                "scope": "organization",
                "value": "ORG-1",
                "type": "read_only",
                "reason": "audit",
            },
        )
        params = {"account": "PH0002", "organization": "ORG-1"}
        assert (
            client.get(
                "/v1/decisions/check", params=params | {"method": "GET"}, headers=enforce
            ).status_code
            == 204
        )
        r = client.get("/v1/decisions/check", params=params | {"method": "POST"}, headers=enforce)
        assert r.status_code == 403 and r.headers["X-Rempart-Decision"] == "read_only"
        bad = client.post(
            "/v1/decisions",
            headers=admin,
            json={"scope": "ip", "value": "999.1.1.1", "type": "block", "reason": "x"},
        )
        assert bad.status_code == 400 and "not a valid ip" in bad.json()["error"]
        assert client.delete("/v1/decisions/d-nope", headers=admin).status_code == 404
        listed = client.get("/v1/decisions", params={"live": True}, headers=admin).json()
        assert {d["type"] for d in listed} == {"step_up", "read_only"}


def test_throttle_really_limits_an_account(service: ResponseService) -> None:
    with TestClient(create_app(service)) as client:
        admin = auth(service, TokenScope.ADMIN)
        enforce = auth(service, TokenScope.ENFORCE)
        client.post(
            "/v1/decisions",
            headers=admin,
            json={
                "scope": "account",
                "value": "PH0003",
                "type": "throttle",
                "rate": "2/s",
                "reason": "slow down",
            },
        )
        codes = [
            client.get("/v1/decisions/check", params={"account": "PH0003"}, headers=enforce)
            for _ in range(6)
        ]
        statuses = [c.status_code for c in codes]
        assert statuses.count(204) == 2 and statuses[-1] == 429  # burst of 2 then empty
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert codes[-1].headers["X-Accel-Expires"] == "0"  # never cached by nginx
        time.sleep(0.6)
        assert (
            client.get(
                "/v1/decisions/check", params={"account": "PH0003"}, headers=enforce
            ).status_code
            == 204
        )
        # other accounts are not limited
        assert all(
            client.get(
                "/v1/decisions/check", params={"account": "PH0004"}, headers=enforce
            ).status_code
            == 204
            for _ in range(10)
        )


def test_body_too_large_is_refused_with_413(tmp_path: Path) -> None:
    service = make_service(tmp_path, max_body_bytes=2048)
    with TestClient(create_app(service)) as client:
        ingest = auth(service, TokenScope.INGEST)
        body = "\n".join(harvest_lines("PH1", "203.0.113.1", 40, start=NOW)).encode()
        assert client.post("/v1/events", content=body, headers=ingest).status_code == 413
        assert service.metrics.ingested._value.get() == 0
    small_queue = make_service(tmp_path / "q", queue_events=10)
    with TestClient(create_app(small_queue)) as client:
        ingest = auth(small_queue, TokenScope.INGEST)
        body = "\n".join(harvest_lines("PH1", "203.0.113.1", 11, start=NOW)).encode()
        r = client.post("/v1/events", content=body, headers=ingest)
        assert r.status_code == 413 and "more than the queue holds" in r.json()["error"]


def test_when_queue_is_full_then_429_and_nothing_accepted_is_lost(tmp_path: Path) -> None:
    service = make_service(tmp_path, queue_events=100)
    app = create_app(service, manage_lifecycle=False)
    with TestClient(app) as client:
        ingest = auth(service, TokenScope.INGEST)
        batches = [
            harvest_lines(f"PH{i:04d}", "198.51.100.1", 30, start=NOW, offset=i * 100)
            for i in range(6)
        ]
        accepted, refused = 0, []
        for b in batches:  # the engine is not running yet: the queue fills up
            r = client.post("/v1/events", content="\n".join(b).encode(), headers=ingest)
            if r.status_code == 202:
                accepted += r.json()["accepted"]
            else:
                assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
                refused.append(b)
        assert accepted == 90 and len(refused) == 3
        assert service.queue.size <= service.queue.capacity
        service.start()
        for b in refused:  # the client retries what was refused
            while True:
                r = client.post("/v1/events", content="\n".join(b).encode(), headers=ingest)
                if r.status_code == 202:
                    accepted += r.json()["accepted"]
                    break
                time.sleep(0.05)
        service.stop()
        assert accepted == 180
        assert service.engine.events_seen == 180  # type: ignore[attr-defined]


def test_health_metrics_and_openapi(service: ResponseService) -> None:
    with TestClient(create_app(service)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        enforce = auth(service, TokenScope.ENFORCE)
        client.get("/v1/decisions/check", params={"account": "X"}, headers=enforce)
        text = client.get("/metrics").text
        assert 'rempart_decision_checks_total{status="204"} 1.0' in text
        spec = client.get("/openapi.json").json()
        assert {"/v1/events", "/v1/decisions/check", "/v1/decisions", "/v1/alerts"} <= set(
            spec["paths"]
        )


def irregular_reads(account: str, n: int, start: float, offset: int) -> bytes:
    import random

    rng = random.Random(offset)
    lines, t = [], start
    for i in range(n):
        t += rng.uniform(0.2, 3.0)  # irregular: not the metronome rule, only the volume one
        lines.append(
            ecs_line(
                account, "203.0.113.7", ts=t, path=f"/api/v1/beneficiaires/{nir(offset + i)}/droits"
            )
        )
    return "\n".join(lines).encode()


def test_engine_state_survives_a_restart(tmp_path: Path) -> None:
    """30 reads before a restart and 15 after: the harvest rule (40 in 10 min) still fires."""
    key = generate_key()
    first = ResponseService(make_config(tmp_path), tokenizer=Tokenizer(key))
    first.start()
    first.ingest_body(irregular_reads("PH0042", 30, NOW, 0))
    first.stop()
    assert first.engine.events_seen == 30  # type: ignore[attr-defined]
    assert not [a for a in first.alerts.values() if a.rule_id == "TP-HARV-001"]
    second = ResponseService(make_config(tmp_path), tokenizer=Tokenizer(key))
    second.start()
    second.ingest_body(irregular_reads("PH0042", 15, NOW + 100, 30))
    assert wait_for(lambda: any(a.rule_id == "TP-HARV-001" for a in second.alerts.values()))
    second.stop()


def test_pending_block_is_approved_over_http_and_then_enforced(tmp_path: Path) -> None:
    from respond_helpers import make_alert

    from rempart.alerts import Severity
    from rempart.respond.settings import SafetyCaps

    cfg = make_config(tmp_path, caps=SafetyCaps(max_auto_account_blocks_per_hour=0))
    service = ResponseService(cfg, tokenizer=Tokenizer(generate_key()))
    with TestClient(create_app(service)) as client:
        admin = auth(service, TokenScope.ADMIN, name="bob")
        [pending] = service.handle_alert(
            make_alert("TP-HARV-001", severity=Severity.CRITICAL, at=time.time())
        )
        assert pending.state.value == "pending"
        alerts = client.get("/v1/alerts", headers=admin).json()
        assert {a["rule"] for a in alerts} == {"TP-HARV-001", "response.block_ceiling"}
        check = {"account": pending.value}
        assert client.get("/v1/decisions/check", params=check, headers=admin).status_code == 204
        r = client.post(f"/v1/decisions/{pending.id}/approve", headers=admin)
        assert r.status_code == 200 and r.json()["state"] == "active"
        assert client.get("/v1/decisions/check", params=check, headers=admin).status_code == 403
        again = client.post(f"/v1/decisions/{pending.id}/reject", headers=admin, json={})
        assert again.status_code == 400 and "not pending" in again.json()["error"]
        entries = client.get("/v1/audit", headers=admin).json()["entries"]
        assert (
            entries[-1]["actor"] == "analyst:bob" and entries[-1]["action"] == "decision.approved"
        )


def test_followed_file_is_read_with_back_pressure_and_resumed_after_restart(
    tmp_path: Path,
) -> None:
    from rempart.config import SourceSettings

    log = tmp_path / "access.ndjson"
    log.write_text(
        "\n".join(harvest_lines("PH1", "198.51.100.4", 500, start=NOW, step=30.0)) + "\n"
    )
    key = generate_key()

    def service() -> ResponseService:
        cfg = make_config(tmp_path, server=ServerSettings(queue_events=50))
        cfg = cfg.model_copy(update={"sources": [SourceSettings(path=str(log), follow=True)]})
        return ResponseService(cfg, tokenizer=Tokenizer(key))

    first = service()
    first.start()
    peak = 0
    end = time.monotonic() + 20
    while first.engine.events_seen < 500 and time.monotonic() < end:  # type: ignore[attr-defined]
        peak = max(peak, first.queue.size)
        time.sleep(0.005)
    first.stop()
    assert first.engine.events_seen == 500  # type: ignore[attr-defined]
    assert peak <= 50  # bounded: the follower waited for room instead
    with log.open("a") as fh:
        fh.write(
            "\n".join(
                harvest_lines("PH1", "198.51.100.4", 100, start=NOW + 20_000, step=30.0, offset=500)
            )
            + "\n"
        )
    second = service()
    second.start()
    assert wait_for(lambda: second.engine.events_seen >= 600)  # type: ignore[attr-defined]
    time.sleep(0.3)
    second.stop()
    assert second.engine.events_seen == 600  # resumed: old lines were not read twice


def test_the_server_engine_loads_the_configured_care_history(tmp_path: Path) -> None:
    from rempart.detect.history import beneficiary_hash
    from rempart.ingest.normalise import normalise_identifier

    care = tmp_path / "care.csv"
    care.write_text(
        f"account,beneficiary\nPH0042,{nir(1)}\nPH0042,{nir(2)}\nPH0042,not/an/id\n",
        encoding="utf-8",
    )
    tokenizer = Tokenizer(generate_key())
    cfg = make_config(tmp_path).model_copy(update={"care_history": [care]})
    service = ResponseService(cfg, tokenizer=tokenizer)
    engine = service.engine
    assert engine.care_history  # type: ignore[attr-defined]
    for i in (1, 2):
        h = beneficiary_hash(tokenizer.token(normalise_identifier(nir(i))))
        assert engine.history.seen("PH0042", h)  # type: ignore[attr-defined]
    assert service.care_note is not None
    assert service.care_note.startswith("care history: 2 relationships of 1 account from 3 rows")
    assert "1 bad row (bad_identifier 1) kept in" in service.care_note
