"""``rempart sim``: simulate portal traffic with labelled attacks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from rempart.cli._common import console, print_json
from rempart.errors import ConfigError


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a date (YYYY-MM-DD)", where="--start") from None


def sim(
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory."),
    seed: int = typer.Option(1, "--seed", help="Random seed: same options, same bytes."),
    accounts: int = typer.Option(200, "--accounts", help="Practitioner accounts."),
    days: int = typer.Option(7, "--days", help="Days to simulate."),
    start: str = typer.Option("2026-11-30", "--start", help="First day (YYYY-MM-DD, local)."),
    scenario: list[str] = typer.Option(
        [],
        "--scenario",
        "-s",
        help="Attack to inject, NAME or NAME:k=v,... (repeatable). Default: all, drawn from seed.",
    ),
    no_attacks: bool = typer.Option(False, "--no-attacks", help="Legitimate traffic only."),
    population: int | None = typer.Option(
        None, "--population", help="Insured people (default: 150 per account, min 20,000)."
    ),
    forgotten_share: float | None = typer.Option(
        None,
        "--forgotten-share",
        help="Share of sessions starting with a forgotten password (default 0.005).",
    ),
    no_events: bool = typer.Option(False, "--no-events", help="Do not write events.jsonl."),
    care_history: bool = typer.Option(
        False, "--care-history", help="Also write care.csv: who billed whom before the period."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    list_scenarios: bool = typer.Option(
        False, "--list-scenarios", help="List scenarios and their parameters, then exit."
    ),
) -> None:
    """Write access.log, events.jsonl, directory.csv and truth.json for a simulated portal (and
    care.csv, the claims history before the period, with --care-history)."""
    from dataclasses import replace

    from rempart.sim import ScenarioSpec, SimOptions, simulate

    if list_scenarios:
        _list_scenarios(as_json)
        return
    if out is None:
        raise ConfigError("an output directory is required", where="--out")
    opts = SimOptions(
        seed=seed,
        accounts=accounts,
        days=days,
        start=_parse_date(start),
        scenarios=tuple(ScenarioSpec.parse(s) for s in scenario) if scenario else None,
        attacks=not no_attacks,
        population=population,
    )
    if forgotten_share is not None:
        opts = replace(opts, forgotten_share=forgotten_share)
    if as_json:
        result = simulate(opts, out, events=not no_events, care=care_history)
        print_json(result.summary())
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]simulating[/bold] day {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("sim", total=days, lines=0)

        def progress(lines: int, done: int, total: int) -> None:
            bar.update(task, completed=done, lines=lines)

        result = simulate(opts, out, events=not no_events, progress=progress, care=care_history)
    _render(result.summary())


def _render(summary: dict[str, object]) -> None:
    from rich.table import Table

    totals = summary["totals"]
    assert isinstance(totals, dict)
    console.print(
        f"[green]wrote[/green] {summary['out_dir']}: {summary['lines']:,} lines "
        f"({summary['start']} .. {summary['end']}) in {summary['seconds']} s "
        f"({summary['lines_per_second']:,} lines/s)"
    )
    console.print(
        f"accounts {totals['accounts']:,} (directory {totals['directory_accounts']:,}), "
        f"beneficiaries read {totals['beneficiaries_read']:,}, "
        f"actions {', '.join(f'{k} {v:,}' for k, v in totals['actions'].items())}"
    )
    if summary.get("care"):
        console.print(f"claims history before the period: {summary['care']}")
    attacks = summary["attacks"]
    assert isinstance(attacks, list)
    if not attacks:
        console.print("no attacks injected")
        return
    table = Table(title="injected attacks (truth.json)")
    for col in ("id", "accounts", "ips", "lines", "exposed", "start", "end"):
        table.add_column(col, justify="right" if col in ("accounts", "ips", "lines") else "left")
    for a in attacks:
        table.add_row(*(str(a[c]) for c in ("id", "accounts", "ips", "lines", "exposed",
                                            "start", "end")))  # fmt: skip
    console.print(table)


def _list_scenarios(as_json: bool) -> None:
    from rich.table import Table

    from rempart.sim.scenarios import COMMON_PARAMS, DURATION_SETS, PARAM_RANGES

    if as_json:
        print_json(
            {
                name: {
                    k: {"type": p.type.__name__, "low": p.low, "high": p.high, "doc": p.doc}
                    for k, p in params.items()
                }
                for name, params in PARAM_RANGES.items()
            }
        )
        return
    table = Table(title="scenarios (defaults drawn per seed from these ranges)")
    for col in ("scenario", "parameter", "range", "meaning"):
        table.add_column(col)
    for name, params in PARAM_RANGES.items():
        for key, p in params.items():
            rng = f"p={p.high}" if p.type is bool else f"{p.low:g}-{p.high:g}"
            table.add_row(name, key, rng, p.doc)
    for key, p in COMMON_PARAMS.items():
        table.add_row("(all)", key, "", p.doc)
    for name, pace in DURATION_SETS.items():
        table.add_row(name, "duration_min", "", f"total minutes; sets {pace}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)
