"""``make demo``: the whole Rempart story on embedded defaults, nothing to install.

1. Simulate two weeks of a tiers-payant portal with labelled attacks (first week: learning).
2. Ingest the log: events pseudonymised and archived to Parquet, bad lines quarantined.
3. Hunt it with the shipped rule pack; score every attack against the simulator's truth.
4. Open incidents from the alerts; measure exactly who was exposed; write the CNIL draft.
5. Start the Rempart server with live traffic; a phished-account harvest is cut off.

Each step is a library call (the same the CLI makes); this module only orchestrates and renders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rempart.errors import RempartError

#: ATT&CK techniques of data collection: incidents carrying one are harvests.
COLLECTION_TECHNIQUES = ("T1119", "T1213")

console = Console() if Console().is_terminal else Console(width=120)


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def step_simulate(out: Path, seed: int, accounts: int) -> Any:
    from rempart.sim import SimOptions, simulate

    console.rule("[bold]1. A fortnight of portal traffic, with attacks")
    base = SimOptions().start
    drawn = SimOptions.randomised(seed, accounts=accounts, days=7, start=base + timedelta(days=7))
    opts = replace(drawn, start=base, days=14)
    started = time.perf_counter()
    # With the operator's claims history before the period (who billed whom): the insider
    # rule tells a stranger from a regular patient by it (docs/care-history.md).
    result = simulate(opts, out / "sim", events=False, care=True)
    table = Table("attack", "scenario", "accounts", "start", "records exposed (truth)")
    for a in result.truth["attacks"]:
        table.add_row(
            a["id"],
            a["scenario"],
            str(len(a["accounts"])),
            a["start"][:16],
            f"{len(a['exposed']):,}",
        )
    console.print(
        f"{result.lines:,} log lines for {accounts} practitioner accounts over 14 days "
        f"({time.perf_counter() - started:.1f} s) -> {result.access_log}"
    )
    console.print(table)
    return result


def step_ingest(out: Path, sim: Any, tokenizer: Any) -> None:
    from rempart.ingest.normalise import load_directory
    from rempart.ingest.profile import load_profile
    from rempart.ingest.service import IngestRequest, run_ingest

    console.rule("[bold]2. Ingestion: parse, normalise, pseudonymise, archive")
    request = IngestRequest(
        paths=[str(sim.access_log)],
        profile=load_profile("tiers-payant"),
        tokenizer=tokenizer,
        archive=out / "archive",
        directory=load_directory(sim.directory),
        quarantine_dir=out / "quarantine",
    )
    started = time.perf_counter()
    result = run_ingest(request)
    s = result.stats
    console.print(
        f"{s.lines:,} lines read, {s.events:,} events, {sum(s.quarantined.values())} quarantined, "
        f"{len(s.accounts):,} account names, {len(s.beneficiaries_read):,} distinct beneficiaries "
        f"disclosed ({time.perf_counter() - started:.1f} s). No raw NIR stored: beneficiary ids "
        f"are keyed tokens ({tokenizer.key_id}.…)."
    )


def step_hunt(out: Path, sim: Any, tokenizer: Any) -> list[Any]:
    from rempart.detect.evaluate import score_run
    from rempart.detect.hunt import run_hunt, write_alerts
    from rempart.detect.loader import load_pack
    from rempart.ingest.normalise import load_directory
    from rempart.ingest.profile import load_profile
    from rempart.ingest.service import IngestRequest

    console.rule("[bold]3. Detection: replay the log through the tiers-payant rule pack")
    specs = load_pack("tiers-payant")
    request = IngestRequest(
        paths=[str(sim.access_log)],
        profile=load_profile("tiers-payant"),
        tokenizer=tokenizer,
        directory=load_directory(sim.directory),
        quarantine_dir=out / "quarantine",
        care_history=[sim.care] if sim.care is not None else [],
    )
    result = run_hunt(request, specs)
    if result.care_note:
        console.print(f"{result.care_note} (the claims history: {sim.care})", highlight=False)
    with (out / "alerts.jsonl").open("w", encoding="utf-8") as fh:
        write_alerts(result.alerts, fh)
    opts = sim.truth.get("options", {})
    scores, unattributed = score_run(
        sim.truth, result.alerts, int(opts.get("accounts", 0)), int(opts.get("days", 14)), 0
    )
    table = Table(
        "attack", "detected", "time to detect", "exposed before alert", "exposed in all", "rules"
    )
    for sc in scores:
        table.add_row(
            sc.attack,
            "[green]yes[/green]" if sc.detected else "[red]no[/red]",
            _fmt_seconds(sc.time_to_detect_s),
            "-" if sc.exposed_before_detection is None else f"{sc.exposed_before_detection:,}",
            f"{sc.exposed_total:,}",
            ", ".join(sc.rules[:3]) + (" …" if len(sc.rules) > 3 else ""),
        )
    console.print(
        f"{result.events:,} events, {len(result.alerts)} alerts "
        f"({len(unattributed)} not attributed to an attack) in {result.seconds:.1f} s "
        f"-> {out / 'alerts.jsonl'}"
    )
    console.print(table)
    return list(result.alerts)


def step_cases(out: Path, sim: Any, tokenizer: Any, alerts: list[Any]) -> None:
    from rempart.cases.service import Cases

    console.rule("[bold]4. Incidents: exactly who was exposed, and the CNIL draft")
    cases = Cases.open(f"sqlite:///{out / 'state.db'}", out / "archive")
    try:
        opened = cases.store.open_from_alerts(alerts, actor="demo")
        truth_sets = {
            a["id"]: {tokenizer(n) for n in a["exposed"]}
            for a in sim.truth["attacks"]
            if a["exposed"]
        }
        table = Table(
            "incident", "accounts", "rules", "affected (Rempart)", "best-matching attack", "truth"
        )
        best_id, best_count = None, -1
        for inc_id in opened.created:
            inc = cases.store.get(inc_id)
            affected = cases.affected(inc)
            tokens = {p.token for p in affected.people}
            match, overlap = "-", 0
            for attack_id, exposed in truth_sets.items():
                if len(tokens & exposed) > overlap:
                    match, overlap = attack_id, len(tokens & exposed)
            if not tokens:
                continue
            truth_n = len(truth_sets.get(match, set()))
            rules = sorted({a.rule_id for a in inc.alerts})
            table.add_row(
                str(inc_id),
                ", ".join(sorted(inc.accounts)[:3]) + (" …" if len(inc.accounts) > 3 else ""),
                ", ".join(rules[:2]) + (" …" if len(rules) > 2 else ""),
                f"{affected.count:,}",
                match,
                f"{truth_n:,}" + (" [green](=)[/green]" if tokens == truth_sets.get(match) else ""),
            )
            # The draft shown is for the largest incident with a collection alert (ATT&CK
            # T1119 automated collection, T1213 data from information repositories).
            harvesting = any(
                t.startswith(COLLECTION_TECHNIQUES) for a in inc.alerts for t in a.technique
            )
            if harvesting and affected.count > best_count:
                best_id, best_count = inc_id, affected.count
        console.print(f"{len(opened.created)} incidents opened from {len(alerts)} alerts")
        console.print(table)
        if best_id is not None:
            md = cases.write_report(
                best_id, "md", out / f"incident-{best_id}-art33.md", actor="demo"
            )
            pdf = cases.write_report(
                best_id, "pdf", out / f"incident-{best_id}-art33.pdf", actor="demo"
            )
            console.print(f"CNIL Art. 33 draft (in French) for incident {best_id}: {md} and {pdf}")
    finally:
        cases.close()


def step_live(seconds: float) -> None:
    from rempart.respond.demo import run_live_demo

    console.rule("[bold]5. Live: the server stops a phished-account harvest")
    run_live_demo(duration=seconds, console=console)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rempart-demo", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo-out"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--live-seconds", type=float, default=45.0)
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args(argv)
    from rempart.protect.tokens import Tokenizer, load_or_create_key_file

    out: Path = args.out
    try:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        tokenizer = Tokenizer(load_or_create_key_file(out / "token.key"))
        sim = step_simulate(out, args.seed, args.accounts)
        step_ingest(out, sim, tokenizer)
        alerts = step_hunt(out, sim, tokenizer)
        step_cases(out, sim, tokenizer, alerts)
        if not args.skip_live:
            step_live(args.live_seconds)
    except RempartError as exc:
        print(f"rempart demo: error: {exc}", file=sys.stderr)
        return 2
    console.rule("[bold]done")
    console.print(f"Outputs in {out}/: " + json.dumps(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
