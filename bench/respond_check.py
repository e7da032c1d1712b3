"""Benchmark of the response layer.

1. Decision-check latency at the server: the ``/v1/decisions/check`` ASGI app called in process
   (no network, no client), with 10,000 account blocks and 1,000 range decisions loaded; p50 / p99
   over many checks, half hitting a decision. Also the loopback HTTP round trip (uvicorn +
   keep-alive client) for context.
2. Time from a harvesting event ingested to the block being enforceable, while simulated
   portal traffic is posted to ``POST /v1/events`` at 10,000 events/s: a harvester's reads are
   mixed into the stream; we time from the POST of the batch holding its 40th read (the
   TP-HARV-001 threshold) until ``/v1/decisions/check`` answers 403 for it.

    .venv/bin/python bench/respond_check.py [--rate 10000] [--seconds 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "respond"))
from respond_nginx import UvicornThread, free_port

from rempart.config import Config, StateSettings
from rempart.protect.tokens import Tokenizer, generate_key
from rempart.respond.apitokens import TokenScope
from rempart.respond.decisions import DecisionType, Scope
from rempart.respond.server import create_app
from rempart.respond.service import ResponseService
from rempart.respond.settings import ResponseSettings, ServerSettings


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def make_service(tmp: Path) -> ResponseService:
    cfg = Config(
        state=StateSettings(url=f"sqlite:///{tmp / 'state.db'}", quarantine_dir=tmp / "q"),
        response=ResponseSettings(server=ServerSettings(queue_events=200_000)),
    )
    return ResponseService(cfg, tokenizer=Tokenizer(generate_key()))


def bench_check(tmp: Path, n: int) -> dict[str, float]:
    service = make_service(tmp)
    token, _ = service.tokens.create("bench", frozenset({TokenScope.ENFORCE}))
    for i in range(10_000):
        service.add_manual_decision(
            scope=Scope.ACCOUNT,
            value=f"PH{i:05d}",
            dtype=DecisionType.BLOCK,
            duration=3600,
            reason="bench",
            analyst="bench",
        )
    for i in range(1_000):
        service.add_manual_decision(
            scope=Scope.RANGE,
            value=f"10.{i // 256}.{i % 256}.0/24",
            dtype=DecisionType.STEP_UP,
            duration=3600,
            reason="bench",
            analyst="bench",
        )
    app = create_app(service, manage_lifecycle=False)
    auth = f"Bearer {token}".encode()

    def scope_for(i: int) -> dict[str, object]:
        account = f"PH{i % 20_000:05d}"  # half blocked, half not
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/decisions/check",
            "raw_path": b"/v1/decisions/check",
            "root_path": "",
            "query_string": f"account={account}&ip=192.0.2.{i % 250}".encode(),
            "headers": [(b"authorization", auth)],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }

    async def run() -> list[float]:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        statuses: list[int] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        times: list[float] = []
        for i in range(n):
            sc = scope_for(i)
            t = time.perf_counter()
            await app(sc, receive, send)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t)
        assert statuses.count(403) >= n // 2 - 1, statuses[:10]
        return times

    times = asyncio.run(run())
    # loopback HTTP round trip, for context
    port = free_port()
    with UvicornThread(create_app(service, manage_lifecycle=False), port):
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        )
        rtt = []
        for i in range(2000):
            t = time.perf_counter()
            client.get("/v1/decisions/check", params={"account": f"PH{i % 20_000:05d}"})
            rtt.append(time.perf_counter() - t)
    return {
        "server_p50_ms": pct(times, 0.50) * 1e3,
        "server_p99_ms": pct(times, 0.99) * 1e3,
        "http_rtt_p50_ms": pct(rtt, 0.50) * 1e3,
        "http_rtt_p99_ms": pct(rtt, 0.99) * 1e3,
    }


def harvest_line(account: str, ip: str, nir: str, ts_iso: str) -> str:
    return json.dumps(
        {
            "@timestamp": ts_iso,
            "user.name": account,
            "source.ip": ip,
            "http.request.method": "GET",
            "url.path": f"/api/v1/beneficiaires/{nir}/droits",
            "http.response.status_code": 200,
            "session.id": f"s-{account}",
        },
        separators=(",", ":"),
    )


def bench_block_latency(tmp: Path, rate: int, seconds: int, runs: int) -> dict[str, object]:
    from rempart.sim import Population, SimOptions, iter_lines

    total = rate * seconds
    print(f"generating {total:,} simulated ECS lines...", flush=True)
    opts = SimOptions(seed=11, accounts=max(200, total // 250), days=2, attacks=False)
    background = list(itertools.islice(iter_lines(opts, fmt="ecs"), total))
    population = Population(seed=5, size=20_000)
    service = make_service(tmp)
    ingest, _ = service.tokens.create("bench-in", frozenset({TokenScope.INGEST}))
    enforce, _ = service.tokens.create("bench-enf", frozenset({TokenScope.ENFORCE}))
    port = free_port()
    batch = rate // 10  # one POST every 100 ms
    latencies: list[float] = []
    refused = 0
    with UvicornThread(create_app(service), port):
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        checker = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {enforce}"}
        )
        n_batches = len(background) // batch
        starts = {int(n_batches * (k + 1) / (runs + 1)): k for k in range(runs)}
        pending: dict[str, float] = {}
        harvesters: dict[int, tuple[str, int]] = {}
        t_start = time.perf_counter()
        for b in range(n_batches):
            lines = background[b * batch : (b + 1) * batch]
            ts_iso = json.loads(lines[-1])["@timestamp"]
            if b in starts:
                harvesters[b] = (f"PH9{starts[b]:04d}", 0)
            trigger: str | None = None
            for hb, (account, done) in list(harvesters.items()):
                if done >= 45:
                    continue
                # 40 reads in the batch before, the rest in this one: the 40th read is here
                take = 39 if done == 0 else 6
                for j in range(done, done + take):
                    lines.append(
                        harvest_line(account, "203.0.113.66", population.nir(hb * 50 + j), ts_iso)
                    )
                harvesters[hb] = (account, done + take)
                if done + take >= 40 and done < 40:
                    trigger = account
            body = ("\n".join(lines) + "\n").encode()
            t_post = time.perf_counter()
            while True:
                r = client.post(
                    "/v1/events", content=body, headers={"Authorization": f"Bearer {ingest}"}
                )
                if r.status_code == 202:
                    break
                refused += 1
                time.sleep(float(r.headers.get("Retry-After", "1")))
            if trigger is not None:
                pending[trigger] = t_post
            for account, t0 in list(pending.items()):
                r = checker.get("/v1/decisions/check", params={"account": account})
                if r.status_code == 403:
                    latencies.append(time.perf_counter() - t0)
                    del pending[account]
            # pace at `rate` events per second
            target = t_start + (b + 1) * batch / rate
            while pending and time.perf_counter() < target:
                for account, t0 in list(pending.items()):
                    r = checker.get("/v1/decisions/check", params={"account": account})
                    if r.status_code == 403:
                        latencies.append(time.perf_counter() - t0)
                        del pending[account]
                time.sleep(0.002)
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.perf_counter() - t_start
        deadline = time.perf_counter() + 30
        while pending and time.perf_counter() < deadline:
            for account, t0 in list(pending.items()):
                r = checker.get("/v1/decisions/check", params={"account": account})
                if r.status_code == 403:
                    latencies.append(time.perf_counter() - t0)
                    del pending[account]
            time.sleep(0.005)
        processed = service.health()["processed"]
    return {
        "events_posted": len(background),
        "offered_rate": round(len(background) / elapsed),
        "processed": processed,
        "refused_429": refused,
        "blocks_measured": len(latencies),
        "never_blocked": len(pending),
        "ingest_to_enforceable_median_s": round(statistics.median(latencies), 3)
        if latencies
        else None,
        "ingest_to_enforceable_max_s": round(max(latencies), 3) if latencies else None,
        "all_s": [round(x, 3) for x in latencies],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=50_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        check = bench_check(Path(tmp) / "a", args.checks)
        print("decision check:", json.dumps({k: round(v, 3) for k, v in check.items()}))
        block = bench_block_latency(Path(tmp) / "b", args.rate, args.seconds, args.runs)
        print("ingest to enforceable:", json.dumps(block))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
