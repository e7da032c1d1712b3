"""End to end with a real nginx: harvest cut off, neighbours unaffected, fail modes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from respond_nginx import NGINX, Nginx, UvicornThread, render_site
from tests.ports import reserve_ports

from rempart.config import Config, SourceSettings, StateSettings
from rempart.portal import create_portal
from rempart.protect.tokens import Tokenizer, generate_key
from rempart.respond.apitokens import TokenScope
from rempart.respond.decisions import DecisionType, Scope
from rempart.respond.server import create_app
from rempart.respond.service import ResponseService
from rempart.respond.settings import ResponseSettings, ServerSettings
from rempart.sim import Population

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install -y nginx)"),
]

PASSWORDS = {"PH0042": "phished-password", "PH0007": "honest-password"}
MFA = {"PH0007": "428913"}


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(seed=7, size=3000)


def start_rempart(tmp: Path, access_log: Path) -> tuple[ResponseService, str]:
    cfg = Config(
        sources=[SourceSettings(path=str(access_log), follow=True)],
        state=StateSettings(
            url=f"sqlite:///{tmp / 'state.db'}",
            archive_dir=tmp / "archive",
            quarantine_dir=tmp / "quarantine",
        ),
        response=ResponseSettings(server=ServerSettings()),
    )
    service = ResponseService(cfg, tokenizer=Tokenizer(generate_key()))
    token, _ = service.tokens.create("nginx", frozenset({TokenScope.ENFORCE}))
    return service, token


@contextmanager
def portal_behind_nginx(
    tmp_path: Path, population: Population
) -> Iterator[tuple[ResponseService, str]]:
    """The reference portal behind a real nginx enforcing Rempart's decisions (both running);
    yields the response service and nginx's base URL."""
    prefix = tmp_path / "nginx"
    access_log = prefix / "logs" / "access.log"
    (prefix / "logs").mkdir(parents=True)
    access_log.touch()
    service, token = start_rempart(tmp_path, access_log)
    socks, ports = reserve_ports("listen", "portal", "rempart")
    conf = render_site(prefix, token=token, **ports)
    with (
        UvicornThread(create_app(service), socks["rempart"]),
        UvicornThread(create_portal(population, PASSWORDS, MFA), socks["portal"]),
        Nginx(prefix, conf, socks["listen"]),
    ):
        yield service, f"http://127.0.0.1:{ports['listen']}"


def test_when_phished_account_harvests_through_nginx_then_it_is_cut_off_and_others_keep_working(
    tmp_path: Path, population: Population, record_property
) -> None:
    with portal_behind_nginx(tmp_path, population) as (service, base):
        harvester = httpx.Client(base_url=base, auth=("PH0042", PASSWORDS["PH0042"]), timeout=5)
        honest = httpx.Client(base_url=base, auth=("PH0007", PASSWORDS["PH0007"]), timeout=5)
        assert harvester.post("/auth/login").status_code == 200
        assert honest.post("/auth/login").status_code == 200
        obtained, blocked_at, last = 0, None, None
        started = time.monotonic()
        for i in range(2000):
            r = harvester.get(f"/api/v1/beneficiaires/{population.nir(i)}/droits")
            last = r
            if r.status_code == 200:
                assert r.json()["nir"] == population.nir(i)
                obtained += 1
            elif r.status_code == 403:
                blocked_at = i
                break
        elapsed = time.monotonic() - started
        record_property("records_obtained_before_block", obtained)
        print(
            f"\nharvest through nginx: {obtained} records obtained before the block "
            f"({elapsed:.2f} s, request {blocked_at})"
        )
        assert blocked_at is not None, "the harvest was never stopped"
        assert last is not None and last.headers["X-Rempart-Decision"] == "block"
        assert last.headers["X-Rempart-Decision-Id"].startswith("d-")
        assert obtained <= 300, f"{obtained} records left before the block"
        # the block holds, the honest pharmacist on the same address keeps working
        assert (
            harvester.get(f"/api/v1/beneficiaires/{population.nir(2500)}/droits").status_code == 403
        )
        # Ten reads: nginx stamps its log with the wall clock, and from 22:00 to 06:00 (Paris)
        # fifteen reads by a pharmacy in an hour are rightly flagged (TP-HARV-004).
        for i in range(2600, 2610):
            r = honest.get(f"/api/v1/beneficiaires/{population.nir(i)}/droits")
            assert r.status_code == 200, r.headers
        assert honest.get("/api/v1/beneficiaires/000000000000000/droits").status_code == 404
        # the decision was made by the harvesting rule, on the account, not on the IP
        [d] = service.store.query(live_only=True)
        assert (d.scope.value, d.value, d.type.value) == ("account", "PH0042", "block")
        assert d.origin.startswith("rule:TP-HARV")


def test_throttle_and_fail_modes_through_nginx(tmp_path: Path, population: Population) -> None:
    for fail_closed in (False, True):
        prefix = tmp_path / f"nginx-{fail_closed}"
        access_log = prefix / "logs" / "access.log"
        (prefix / "logs").mkdir(parents=True)
        service, token = start_rempart(tmp_path / f"r{fail_closed}", access_log)
        socks, ports = reserve_ports("listen", "portal", "rempart")
        conf = render_site(prefix, token=token, fail_closed=fail_closed, **ports)
        base = f"http://127.0.0.1:{ports['listen']}"
        with (
            UvicornThread(create_portal(population, PASSWORDS, MFA), socks["portal"]),
            Nginx(prefix, conf, socks["listen"]),
        ):
            client = httpx.Client(base_url=base, auth=("PH0007", PASSWORDS["PH0007"]), timeout=5)
            # Rempart's port stays reserved (refusing connections) until it starts here.
            with UvicornThread(create_app(service), socks["rempart"]):
                service.add_manual_decision(
                    scope=Scope.ACCOUNT,
                    value="PH0007",
                    dtype=DecisionType.THROTTLE,
                    duration=600,
                    reason="test",
                    analyst="t",
                    rate="1/s",
                )
                codes = [client.get("/api/v1/me") for _ in range(5)]
                statuses = [c.status_code for c in codes]
                assert 200 in statuses and statuses[-1] == 429
                assert int(codes[-1].headers["Retry-After"]) >= 1
            # Rempart is down now
            r = client.get("/api/v1/me")
            assert r.status_code == (503 if fail_closed else 200)


def test_step_up_through_nginx_is_satisfied_by_mfa_in_that_session(
    tmp_path: Path, population: Population
) -> None:
    with portal_behind_nginx(tmp_path, population) as (service, base):
        user = httpx.Client(base_url=base, auth=("PH0007", PASSWORDS["PH0007"]), timeout=5)
        assert user.post("/auth/login").status_code == 200  # session cookie
        service.add_manual_decision(
            scope=Scope.ACCOUNT,
            value="PH0007",
            dtype=DecisionType.STEP_UP,
            duration=600,
            reason="new device",
            analyst="t",
        )
        r = user.get("/api/v1/me")
        assert r.status_code == 401 and r.headers["X-Rempart-Decision"] == "step_up"
        assert user.post("/auth/mfa", json={"code": "000000"}).status_code == 401  # wrong code
        ok = user.post("/auth/mfa", json={"code": MFA["PH0007"]})
        assert ok.status_code == 200, (ok.headers, ok.text)
        # Rempart reads the MFA success in nginx's access log: this session may go on
        deadline = time.monotonic() + 10
        while user.get("/api/v1/me").status_code != 200:
            assert time.monotonic() < deadline, "step-up never satisfied"
            time.sleep(0.1)
        other_session = httpx.Client(base_url=base, auth=("PH0007", PASSWORDS["PH0007"]))
        assert other_session.get("/api/v1/me").status_code == 401
