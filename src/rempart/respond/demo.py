"""Live demo: the Rempart server in process, simulated portal traffic, a phished-account harvest
detected and stopped. ``make demo`` calls :func:`run_live_demo`; it needs nothing but Python.

The harvester behaves like a client behind nginx: before each read it asks the server's decision
check (the same answer nginx's ``auth_request`` gets), and it stops at the first 403.
"""

from __future__ import annotations

import itertools
import json
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from rempart.alerts import Alert
from rempart.respond.decisions import Decision


@dataclass
class DemoResult:
    records_obtained: int
    blocked: bool
    seconds_to_block: float | None
    decision_id: str | None
    events: int


def _listening_socket() -> socket.socket:
    """A loopback socket on a port the kernel picks, handed to the server as it is: no other
    process can take the port between choosing it and serving on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def run_live_demo(
    *,
    duration: float = 45.0,
    accounts: int = 600,
    speed: float = 10.0,
    harvest_after: float = 8.0,
    harvest_rate: int = 40,
    seed: int = 1,
    console: Console | None = None,
) -> DemoResult:
    """Run the demo for at most ``duration`` seconds (it ends early once the story is told)."""
    import uvicorn

    from rempart.config import Config, StateSettings
    from rempart.protect.tokens import Tokenizer, generate_key
    from rempart.respond.apitokens import TokenScope
    from rempart.respond.server import create_app
    from rempart.respond.service import ResponseService
    from rempart.sim import Population, SimOptions, iter_lines

    console = console or Console()
    tmp = Path(tempfile.mkdtemp(prefix="rempart-demo-"))
    cfg = Config(
        state=StateSettings(url=f"sqlite:///{tmp / 'state.db'}", quarantine_dir=tmp / "quarantine")
    )
    service = ResponseService(cfg, tokenizer=Tokenizer(generate_key()))
    enforce, _ = service.tokens.create("demo-nginx", frozenset({TokenScope.ENFORCE}))
    sock = _listening_socket()
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    console.print(
        f"[bold]Rempart[/bold] server starting on http://127.0.0.1:{port} "
        "(API docs at /docs); generating simulated portal traffic..."
    )
    # Legitimate traffic replayed from 09:00, ``speed`` times faster than life (much more and
    # honest pharmacies would read at machine speed, which the rules rightly flag).
    lines_iter = iter_lines(
        SimOptions(seed=seed, accounts=accounts, days=1, attacks=False), fmt="ecs"
    )
    background = (
        doc
        for doc in map(json.loads, lines_iter)
        if datetime.fromisoformat(doc["@timestamp"]).hour >= 9
    )
    population = Population(seed=seed, size=20_000)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    check = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {enforce}"}
    )
    harvester, ip = "PH0042", "185.220.101.42"
    obtained, blocked_at, decision_id = 0, None, None
    events = 0
    started = time.monotonic()
    harvest_started: float | None = None
    log: list[str] = []

    def view() -> Group:
        elapsed = time.monotonic() - started
        stats = Table.grid(padding=(0, 2))
        stats.add_row("elapsed", f"{elapsed:5.1f} s", "events ingested", f"{events:,}")
        stats.add_row(
            "alerts", str(len(service.alerts)), "decisions enforced", str(len(service.store.index))
        )
        status = (
            "[red]BLOCKED[/red]"
            if blocked_at
            else "[yellow]harvesting[/yellow]"
            if harvest_started
            else "[green]idle[/green]"
        )
        stats.add_row("harvester", f"{harvester} from {ip}", "status", status)
        stats.add_row("records obtained", f"[bold]{obtained}[/bold]", "", "")
        return Group(
            Panel(stats, title="Rempart live: phished-account harvest"),
            Panel("\n".join(log[-8:]) or "waiting for the attack...", title="events"),
        )

    def on_alert(a: Alert) -> None:
        log.append(f"[red]ALERT[/red] {a.rule_id} {a.severity.value} on {a.entity}: {a.title}")

    def on_decision(d: Decision) -> None:
        log.append(
            f"[bold magenta]DECISION[/bold magenta] {d.type.value} {d.scope.value} {d.value} "
            f"for {d.duration / 60:.0f} min ({d.state.value})"
        )

    service.on_alert.append(on_alert)
    service.on_decision.append(on_decision)
    tick = 0.1
    first = next(background)
    origin = datetime.fromisoformat(first["@timestamp"]).timestamp()
    wall0 = time.time()
    # Events are stamped on the simulated day's clock, from its first line after 09:00 (a
    # second of demo is a second of event time), not on the wall clock: the story is the same
    # whatever the hour the demo runs at (at night the off-hours rule would rightly fire first).
    # Decisions expire on the server's wall clock, as in production.
    held: list[dict[str, object]] = [first]
    neighbour = ""
    reads_per_tick = max(1, int(harvest_rate * tick))
    nir_index = itertools.count()
    try:
        with Live(view(), console=console, refresh_per_second=8) as live:
            while time.monotonic() - started < duration:
                t0 = time.monotonic()
                now = time.time()
                ts_iso = datetime.fromtimestamp(origin + now - wall0, tz=UTC).isoformat(
                    timespec="milliseconds"
                )
                lines = []
                while True:  # every background line whose time has come, at wall-clock time
                    doc = held.pop() if held else next(background, None)
                    if doc is None:
                        break
                    orig = datetime.fromisoformat(str(doc["@timestamp"])).timestamp()
                    if (orig - origin) / speed > now - wall0:
                        held.append(doc)
                        break
                    if not neighbour and str(doc.get("user.name", "")).startswith("PH"):
                        neighbour = str(doc["user.name"])
                    shifted = datetime.fromtimestamp(origin + (orig - origin) / speed, tz=UTC)
                    doc["@timestamp"] = shifted.isoformat(timespec="milliseconds")
                    lines.append(json.dumps(doc))
                if harvest_started is None and t0 - started >= harvest_after:
                    harvest_started = t0
                    log.append(
                        f"[yellow]{harvester} logs in from {ip} with stolen credentials "
                        "and starts reading beneficiaries...[/yellow]"
                    )
                if harvest_started is not None and blocked_at is None:
                    for _ in range(reads_per_tick):
                        r = check.get(
                            "/v1/decisions/check",
                            params={"account": harvester, "ip": ip, "session": "s-x"},
                        )
                        if r.status_code == 403:
                            blocked_at = time.monotonic()
                            decision_id = r.headers.get("X-Rempart-Decision-Id")
                            log.append(
                                f"[bold green]nginx now answers 403 to {harvester}[/bold green]"
                                f" (decision {decision_id})"
                            )
                            if neighbour:
                                code = check.get(
                                    "/v1/decisions/check", params={"account": neighbour, "ip": ip}
                                ).status_code
                                verdict = "allowed" if code == 204 else str(code)
                                log.append(
                                    f"{neighbour}, another pharmacy on the same network: {verdict}"
                                )
                            break
                        nir = population.nir(next(nir_index))
                        lines.append(
                            json.dumps(
                                {
                                    "@timestamp": ts_iso,
                                    "user.name": harvester,
                                    "source.ip": ip,
                                    "http.request.method": "GET",
                                    "url.path": f"/api/v1/beneficiaires/{nir}/droits",
                                    "http.response.status_code": 200,
                                    "session.id": "s-x",
                                }
                            )
                        )
                        obtained += 1
                service.ingest_body(("\n".join(lines) + "\n").encode(), source="demo")
                events += len(lines)
                live.update(view())
                if blocked_at is not None and time.monotonic() - blocked_at > 4:
                    break
                time.sleep(max(0.0, tick - (time.monotonic() - t0)))
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    took = blocked_at - harvest_started if blocked_at and harvest_started else None
    if blocked_at:
        console.print(
            f"[bold]Stopped[/bold]: {harvester} obtained {obtained} records before "
            f"the block, {took:.1f} s after the harvest began (unchecked, {harvest_rate} "
            f"records/s is {harvest_rate * 8 * 3600:,} reads in one night)."
        )
    else:
        console.print("[red]The harvest was not stopped within the demo time.[/red]")
    return DemoResult(obtained, blocked_at is not None, took, decision_id, events)
