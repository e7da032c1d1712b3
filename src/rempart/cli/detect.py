"""``rempart rules lint|test|list``, ``rempart hunt``, ``rempart watch``, ``rempart eval``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from rempart.cli._common import CONFIG_OPTION, console, err_console, get_config, print_json
from rempart.gcpause import paused

if TYPE_CHECKING:
    from rempart.alerts import Alert
    from rempart.config import Config
    from rempart.detect.hunt import HuntResult
    from rempart.detect.spec import RuleSpec

rules_app = typer.Typer(help="Check, test and list detection rules.", no_args_is_help=True)

RULES_OPTION = typer.Option(
    None, "--rules", "-r", help="Extra rule file or directory (repeatable)."
)
CARE_OPTION = typer.Option(
    None,
    "--care-history",
    help="Care relationships CSV (account, beneficiary): who billed whom before (repeatable).",
)
_SEV_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def _rule_paths(cfg: Config, dirs: list[Path] | None, profile: str | None) -> list[Path]:
    from rempart.detect.loader import builtin_pack_dir

    if dirs:
        return list(dirs)
    return [builtin_pack_dir(_pack_name(profile or cfg.profile)), *cfg.detection.rules]


def _pack_name(profile: str) -> str:
    return Path(profile).stem if profile.endswith((".yaml", ".yml")) else profile


def _load_specs(cfg: Config, extra: list[Path] | None, profile: str | None) -> list[RuleSpec]:
    from rempart.detect.loader import load_pack

    return load_pack(
        _pack_name(profile or cfg.profile),
        [*cfg.detection.rules, *(extra or [])],
        cfg.detection.disabled,
    )


@rules_app.command("lint")
def lint(
    dirs: list[Path] = typer.Argument(None, help="Rule files or directories (default: the pack)."),
    as_json: bool = typer.Option(False, "--json", help="Problems as JSON."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Report every problem of every rule at once (exit 1 when there is any)."""
    from rempart.detect.loader import lint_rules

    cfg = get_config(config)
    specs, problems = lint_rules(_rule_paths(cfg, dirs, None))
    if as_json:
        print_json(
            {
                "rules": len(specs),
                "problems": [{"where": p.where, "message": p.message} for p in problems],
            }
        )
    elif problems:
        for p in problems:
            console.print(f"[red]error[/red] {p}", highlight=False)
        console.print(f"{len(problems)} problem(s); {len(specs)} rule(s) valid")
    else:
        console.print(f"[green]ok[/green] {len(specs)} rule(s), no problem")
    if problems:
        raise typer.Exit(1)


@rules_app.command("test")
def test(
    dirs: list[Path] = typer.Argument(None, help="Rule files or directories (default: the pack)."),
    as_json: bool = typer.Option(False, "--json", help="Results as JSON."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Run every rule's own samples; fail when a sample does not hold or a rule has none."""
    from rempart.detect.loader import load_rules
    from rempart.detect.samples import run_samples

    cfg = get_config(config)
    specs = load_rules(_rule_paths(cfg, dirs, None))
    results = run_samples(specs)
    failed = [r for r in results if not r.ok]
    if as_json:
        print_json(
            [
                {
                    "rule": r.rule_id,
                    "sample": r.sample,
                    "where": r.where,
                    "ok": r.ok,
                    "problems": r.problems,
                    "events": r.events,
                }
                for r in results
            ]
        )
    else:
        table = Table(title=f"Rule samples: {len(results) - len(failed)}/{len(results)} pass")
        for col in ("rule", "sample", "events", "result"):
            table.add_column(col)
        for r in results:
            verdict = "[green]pass[/green]" if r.ok else "[red]FAIL[/red] " + "; ".join(r.problems)
            table.add_row(r.rule_id, r.sample, str(r.events), verdict)
        console.print(table)
    if failed:
        raise typer.Exit(1)


@rules_app.command("list")
def list_rules(
    profile: str = typer.Option(None, "--profile", "-p", help="Profile whose pack to list."),
    rules: list[Path] = RULES_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Rules as JSON."),
    config: Path = CONFIG_OPTION,
) -> None:
    """The rules that would run: id, type, severity, ATT&CK technique, title."""
    cfg = get_config(config)
    specs = _load_specs(cfg, rules, profile)
    if as_json:
        print_json(
            [
                {
                    "id": s.id,
                    "version": s.version,
                    "type": s.type,
                    "severity": s.severity.value,
                    "technique": list(s.technique),
                    "title": s.title,
                    "alert": s.alert,
                    "risk": s.risk,
                    "where": s.where,
                }
                for s in specs
            ]
        )
        return
    table = Table(title=f"{len(specs)} detection rules")
    for col in ("id", "type", "severity", "technique", "title"):
        table.add_column(col)
    for s in specs:
        sev = s.severity.value if s.alert else f"signal +{s.risk:g}"
        table.add_row(
            s.id,
            s.type,
            f"[{_SEV_STYLE.get(s.severity.value, '')}]{sev}[/]",
            ", ".join(s.technique),
            s.title,
        )
    console.print(table)


def _alerts_table(alerts: list[Alert], limit: int = 25) -> Table:
    from rempart.alerts import Severity

    table = Table(title=f"Alerts ({len(alerts)}; most severe first)", show_lines=False)
    for col in ("detected (UTC)", "rule", "severity", "entity", "records", "explanation"):
        table.add_column(col, overflow="fold")
    ranked = sorted(alerts, key=lambda a: (-Severity(a.severity).rank, a.detected_at))
    for a in ranked[:limit]:
        d = a.to_dict()
        table.add_row(
            d["detected_at"][:19],
            a.rule_id,
            f"[{_SEV_STYLE.get(a.severity.value, '')}]{a.severity.value}[/]",
            a.entity[:40],
            f"{a.records_exposed:,}",
            a.explanation[:160],
        )
    return table


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Hunt summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("lines read", f"{summary['lines']:,}")
    table.add_row("events", f"{summary['events']:,}")
    table.add_row("quarantined lines", f"{summary['quarantined']:,}")
    for reason, n in summary["quarantined_by_reason"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("late events", f"{summary['late_events']:,}")
    table.add_row("alerts", f"{summary['alerts']:,}")
    for rule, n in summary["alerts_by_rule"].items():
        table.add_row(f"  {rule}", f"{n:,}")
    rate = summary["events_per_second"] or 0
    table.add_row("time", f"{summary['seconds']:.2f} s ({rate:,} events/s)")
    return table


def hunt(
    paths: list[str] = typer.Argument(..., help="Log files (plain, .gz, .zst) or globs."),
    profile: str = typer.Option(None, "--profile", "-p", help="Route profile and rule pack."),
    rules: list[Path] = RULES_OPTION,
    out: Path = typer.Option(None, "--out", "-o", help="Write alerts as JSON lines here."),
    state: str = typer.Option(None, "--state", help="SQLAlchemy URL: restore, then save state."),
    directory: Path = typer.Option(None, "--directory", help="Account directory CSV."),
    care_history: list[Path] = CARE_OPTION,
    lateness: float = typer.Option(None, "--lateness", help="Seconds of out-of-order tolerance."),
    as_json: bool = typer.Option(False, "--json", help="Alerts as JSON lines on stdout."),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        help="2: decode in a child process while detecting (default when files and 2+ cores).",
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Replay logs through the detection rules; summary table, alerts as JSON lines."""
    # A batch job: imports, rules and replay make no garbage cycles to collect, and their
    # objects are frozen after (the process ends soon; see rempart.gcpause).
    with paused(freeze=True):
        from rempart.detect.hunt import default_workers, run_hunt, write_alerts
        from rempart.ingest.service import IngestRequest

        cfg = get_config(config)
        specs = _load_specs(cfg, rules, profile)
        request = IngestRequest.from_config(
            cfg, paths=paths, profile=profile, directory=directory, care_history=care_history
        )
        result = run_hunt(
            request,
            specs,
            state_url=state,
            lateness=cfg.detection.lateness_seconds if lateness is None else lateness,
            workers=default_workers(request.paths) if workers is None else workers,
        )
    if out is not None:
        with out.open("w", encoding="utf-8") as fh:
            write_alerts(result.alerts, fh)
    if as_json:
        write_alerts(result.alerts, sys.stdout)
        # stdout is the alerts: the care history and the bad lines are said on stderr
        if result.care_note:
            err_console.print(result.care_note, highlight=False, soft_wrap=True)
        if result.quarantined:
            err_console.print(_quarantine_note(result), highlight=False, soft_wrap=True)
        return
    if result.care_note:
        console.print(result.care_note, highlight=False, soft_wrap=True)
    console.print(_summary_table(result.summary()))
    if result.alerts:
        console.print(_alerts_table(result.alerts))
    if out is not None:
        console.print(f"alerts written to {out}")
    if result.quarantined:
        console.print(_quarantine_note(result), highlight=False, soft_wrap=True)


def _quarantine_note(result: HuntResult) -> str:
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(result.quarantined_by_reason.items()))
    where = (
        f"kept in {result.quarantine_file}"
        if result.quarantine_file
        else "counted, not kept (no quarantine directory)"
    )
    n = result.quarantined
    return f"{n:,} bad line{'' if n == 1 else 's'} ({reasons}) {where}"


def watch(
    paths: list[str] = typer.Argument(None, help="Files to follow (default: configured sources)."),
    profile: str = typer.Option(None, "--profile", "-p", help="Route profile and rule pack."),
    rules: list[Path] = RULES_OPTION,
    state: str = typer.Option(None, "--state", help="SQLAlchemy URL (default: state.url)."),
    idle_exit: float = typer.Option(None, "--idle-exit", help="Stop after N idle seconds."),
    care_history: list[Path] = CARE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Alerts as JSON lines."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Follow logs live (across rotation) and print alerts as they fire or grow."""
    import json

    from rempart.detect.hunt import run_watch
    from rempart.errors import ConfigError
    from rempart.ingest.service import IngestRequest

    cfg = get_config(config)
    specs = _load_specs(cfg, rules, profile)
    request = IngestRequest.from_config(
        cfg, paths=paths or None, profile=profile, care_history=care_history
    )
    if not request.paths:
        raise ConfigError("nothing to watch", hint="give paths or configure sources")

    def show(alert: Alert, created: bool) -> None:
        if as_json:
            sys.stdout.write(
                json.dumps({"created": created, **alert.to_dict()}, ensure_ascii=False) + "\n"
            )
            sys.stdout.flush()
            return
        verb = "[bold]NEW[/bold]" if created else "grew"
        console.print(
            f"{verb} {alert.severity.value} {alert.rule_id} {alert.entity}: "
            f"{alert.explanation} ({alert.records_exposed:,} records)",
            highlight=False,
        )

    if not as_json:
        err_console.print(
            f"watching {len(request.paths)} source(s) with {len(specs)} rules; Ctrl-C to stop"
        )
    result = run_watch(
        request,
        specs,
        lateness=cfg.detection.lateness_seconds,
        state_url=state or cfg.state.url,
        on_alert=show,
        idle_exit=idle_exit,
        checkpoint_every=cfg.detection.checkpoint_seconds,
    )
    if not as_json:
        err_console.print(f"stopped: {result.events:,} events, {len(result.alerts)} new alerts")
    if result.care_note:
        err_console.print(result.care_note, highlight=False, soft_wrap=True)
    if result.quarantined:
        err_console.print(_quarantine_note(result), highlight=False, soft_wrap=True)


def evaluate(
    seeds: list[int] = typer.Option([1, 2, 3, 4, 5], "--seed", "-s", help="Seeds (repeatable)."),
    accounts: int = typer.Option(200, "--accounts", help="Simulated accounts."),
    days: int = typer.Option(7, "--days", help="Days of simulated traffic with attacks."),
    learn_days: int = typer.Option(7, "--learn-days", help="Attack-free days learned first."),
    rules: list[Path] = RULES_OPTION,
    care_history: bool = typer.Option(
        False,
        "--care-history/--no-care-history",
        help="Also give the engine the claims history before the period (who billed whom).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Full results as JSON."),
    config: Path = CONFIG_OPTION,
) -> None:
    """Run the simulator's scenarios through ingestion and the rules; score each scenario."""
    from rempart.detect.evaluate import evaluate_seed, summarise, to_json

    cfg = get_config(config)
    specs = _load_specs(cfg, rules, "tiers-payant")
    runs = []
    for seed in seeds:
        if not as_json:
            err_console.print(f"seed {seed}: simulating and detecting...")
        runs.append(
            evaluate_seed(
                seed,
                specs,
                accounts=accounts,
                days=days,
                learn_days=learn_days,
                care_history=care_history,
            )
        )
    if as_json:
        sys.stdout.write(to_json(runs) + "\n")
        return
    summary = summarise(runs)
    with_care = ", with the claims history" if care_history else ", from the log alone"
    table = Table(title=f"Detection over seeds {', '.join(map(str, seeds))}{with_care}")
    for col in (
        "scenario",
        "detected",
        "time to detect (median / max)",
        "records exposed before alert (max)",
        "records exposed in total (max)",
    ):
        table.add_column(col)
    for name, s in summary["scenarios"].items():
        med, worst = s["time_to_detect_s_median"], s["time_to_detect_s_max"]
        ttd = "-" if med is None else f"{_dur(med)} / {_dur(worst)}"
        exp = s["exposed_before_detection_max"]
        table.add_row(
            name,
            f"{s['detected']}/{s['runs']}",
            ttd,
            "-" if exp is None else f"{exp:,}",
            f"{s['exposed_total_max']:,}",
        )
    console.print(table)
    console.print(
        f"false-positive accounts: {summary['fp_accounts']} over "
        f"{summary['account_days']:,} account-days = "
        f"{summary['fp_per_1000_account_days']} per 1,000 account-days"
    )


def _dur(seconds: float) -> str:
    from rempart.detect.windows import human_duration

    return human_duration(seconds)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.command("hunt")(hunt)
    app.command("watch")(watch)
    app.command("eval")(evaluate)
