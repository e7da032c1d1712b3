"""``rempart decisions list|add|revoke|approve|reject|audit`` (works on the state database; a
running server sees changes made here when it reloads, or use the HTTP API)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer

from rempart.cli._common import CONFIG_OPTION, console, get_config, print_json

decisions_app = typer.Typer(
    help="Response decisions: list, add, revoke, approve pending ones.", no_args_is_help=True
)


def _store(config: Path | None):  # type: ignore[no-untyped-def]
    import time

    from rempart.db import open_database
    from rempart.respond.store import DecisionStore

    _, sessions = open_database(get_config(config).state.url)
    return DecisionStore(sessions, time.time)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@decisions_app.command("list")
def list_(
    config: Path | None = CONFIG_OPTION,
    state: str | None = typer.Option(None, help="active, pending, simulated, revoked, rejected"),
    live: bool = typer.Option(False, help="Only decisions enforced now."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List decisions, newest first."""
    from rich.table import Table

    from rempart.errors import InputError
    from rempart.respond.decisions import DecisionState

    try:
        st = DecisionState(state) if state else None
    except ValueError:
        raise InputError(f"unknown state {state!r}") from None
    found = _store(config).query(state=st, live_only=live)
    if json_out:
        print_json([d.to_dict() for d in found])
        return
    table = Table("id", "type", "scope", "value", "state", "expires", "origin", "reason")
    for d in found:
        table.add_row(
            d.id,
            d.type.value,
            d.scope.value,
            d.value,
            d.state.value,
            _when(d.expires),
            d.origin,
            d.reason[:60],
        )
    console.print(table)


@decisions_app.command("add")
def add(
    scope: str = typer.Argument(..., help="account, ip, range, session or organization"),
    value: str = typer.Argument(...),
    type_: str = typer.Option(
        "block", "--type", "-t", help="block, step_up, throttle, read_only, notify"
    ),
    duration: str = typer.Option("1h", help="e.g. 15m, 4h, 7d"),
    reason: str = typer.Option(..., help="Why (kept in the audit trail)."),
    rate: str | None = typer.Option(None, help="throttle only, e.g. 30/min"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Add a decision as an analyst."""
    import time

    from rempart.errors import InputError
    from rempart.respond.decisions import (
        Decision,
        DecisionType,
        Rate,
        Scope,
        new_decision_id,
        normalise_value,
    )
    from rempart.respond.policy_spec import parse_duration

    try:
        sc, dt = Scope(scope), DecisionType(type_)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if dt is DecisionType.THROTTLE and not rate:
        raise InputError("a throttle needs --rate, e.g. 30/min")
    now = time.time()
    who = f"analyst:{getpass.getuser()}"
    d = Decision(
        new_decision_id(),
        sc,
        normalise_value(sc, value),
        dt,
        now,
        now + parse_duration(duration),
        reason,
        who,
        rate=Rate.parse(rate) if rate else None,
    )
    _store(config).add(d, actor=who)
    console.print(f"{d.id}: {dt.value} {sc.value} {d.value} until {_when(d.expires)}")


@decisions_app.command("revoke")
def revoke(
    decision_id: str,
    reason: str = typer.Option("", help="Why."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Revoke a decision (enforcement stops)."""
    d = _store(config).revoke(decision_id, by=f"analyst:{getpass.getuser()}", reason=reason)
    console.print(f"{d.id} revoked")


@decisions_app.command("approve")
def approve(decision_id: str, config: Path | None = CONFIG_OPTION) -> None:
    """Approve a pending decision (held by the ceiling of automatic blocks)."""
    d = _store(config).approve(decision_id, by=f"analyst:{getpass.getuser()}")
    console.print(f"{d.id} approved: {d.type.value} {d.value} until {_when(d.expires)}")


@decisions_app.command("reject")
def reject(
    decision_id: str,
    reason: str = typer.Option("", help="Why."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Reject a pending decision."""
    d = _store(config).reject(decision_id, by=f"analyst:{getpass.getuser()}", reason=reason)
    console.print(f"{d.id} rejected")


@decisions_app.command("audit")
def audit(config: Path | None = CONFIG_OPTION, limit: int = typer.Option(50)) -> None:
    """Show the audit trail and verify its hash chain (exit 1 when it is broken)."""
    store = _store(config)
    report = store.audit.verify()
    for e in store.audit.entries(limit=limit):
        console.print(
            f"{e.seq:>6} {_when(e.at)} {e.actor:<24} {e.action:<20} {e.subject or ''}",
            highlight=False,
        )
    if report.ok:
        console.print(f"[green]chain ok[/green]: {report.records} records")
    else:
        console.print(f"[red]chain broken[/red] at record {report.first_bad_seq}: {report.problem}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(decisions_app, name="decisions")
