"""``rempart ingest``: read portal logs, normalise, pseudonymise, archive to Parquet."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from rempart.cli._common import CONFIG_OPTION, console, get_config, print_json


def _summary_table(stats: dict[str, object], seconds: float) -> Table:
    table = Table(title="Ingestion summary", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("lines read", f"{stats['lines']:,}")
    table.add_row("events", f"{stats['events']:,}")
    table.add_row("accounts", f"{stats['accounts']:,}")
    table.add_row("distinct beneficiaries disclosed", f"{stats['beneficiaries_read']:,}")
    actions = stats["actions"]
    assert isinstance(actions, dict)
    for action, count in actions.items():
        table.add_row(f"  {action}", f"{count:,}")
    table.add_row("quarantined", f"{stats['quarantined']:,}")
    reasons = stats["quarantined_by_reason"]
    assert isinstance(reasons, dict)
    for reason, count in reasons.items():
        table.add_row(f"  {reason}", f"{count:,}")
    rate = int(stats["lines"]) / seconds if seconds > 0 else 0.0  # type: ignore[call-overload]
    table.add_row("time", f"{seconds:.2f} s ({rate:,.0f} lines/s)")
    return table


def ingest(
    paths: list[str] = typer.Argument(
        ..., help="Log files (plain, .gz, .zst), globs, or - for stdin."
    ),
    profile: str = typer.Option(None, "--profile", "-p", help="Route profile name or YAML file."),
    archive: Path = typer.Option(None, "--archive", "-a", help="Write events as Parquet here."),
    fmt: str = typer.Option("auto", "--format", help="auto, combined or jsonl."),
    directory: Path = typer.Option(None, "--directory", help="Account directory CSV."),
    quarantine_dir: Path = typer.Option(None, "--quarantine", help="Where to keep bad lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Tail the files across rotation."),
    idle_exit: float = typer.Option(
        None, "--idle-exit", help="With --follow: stop after this many seconds without new lines."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Read logs without losing a line: events to the archive, bad lines to quarantine."""
    from rempart.ingest.service import IngestRequest, run_follow, run_ingest

    cfg = get_config(config)
    if fmt not in ("auto", "combined", "jsonl"):
        raise typer.BadParameter("expected auto, combined or jsonl", param_hint="--format")
    request = IngestRequest.from_config(
        cfg,
        paths=paths,
        profile=profile,
        archive=archive,
        fmt=fmt,  # type: ignore[arg-type]
        directory=directory,
        quarantine_dir=quarantine_dir,
    )
    if follow:
        stats = run_follow(
            request,
            idle_exit=idle_exit,
            on_progress=None if as_json else lambda n: console.print(f"[dim]{n:,} archived[/dim]"),
        )
        if as_json:
            print_json(stats.to_dict())
        return
    started = time.perf_counter()
    result = run_ingest(request, progress=not as_json)
    elapsed = time.perf_counter() - started
    data = result.stats.to_dict()
    data["archive"] = str(request.archive) if request.archive else None
    data["quarantine_file"] = str(result.quarantine_file) if result.quarantine_file else None
    data["seconds"] = round(elapsed, 3)
    if as_json:
        print_json(data)
        return
    console.print(_summary_table(data, elapsed))
    if result.quarantine_file:
        console.print(f"bad lines kept in [bold]{result.quarantine_file}[/bold]")
    if request.archive:
        console.print(f"events archived under [bold]{request.archive}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
