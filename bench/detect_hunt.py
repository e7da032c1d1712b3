"""Throughput and peak memory of ``rempart hunt`` (ingest + detect) on simulated portal logs.

Generates (once, cached) a simulated log of about ``--lines`` lines with every attack scenario,
then runs the real command ``rempart hunt LOG --directory DIR --out alerts.jsonl`` ``--runs``
times in a fresh process each, and reports the median wall time, events per second and the peak
RSS of the process (``wait4`` rusage). It also times the engine alone on pre-parsed events
(in this process), to separate detection cost from parsing cost.

    .venv/bin/python bench/detect_hunt.py --lines 1000000
    .venv/bin/python bench/detect_hunt.py --lines 10000000 --runs 1
    .venv/bin/python bench/detect_hunt.py --workers 2   # decode in a child process
    .venv/bin/python bench/detect_hunt.py --care-history   # with the claims history
    .venv/bin/python bench/detect_hunt.py --lines 60000 --days 1 --runs 1 \\
        --scenario stuffing_single_ip:n_accounts=60000,rate=3000   # one address, 60k names

``--workers 1`` (the default) is the one-core figure; the CPU time reported for ``--workers 2``
includes the decoding child (``wait4`` counts the children a process reaped).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cached_simulation, hunt_command, machine

LINES_PER_ACCOUNT_DAY = 116  # measured on the simulator's default mix


def ensure_log(
    lines: int, data_dir: Path, days: int, scenario: str | None = None, care: bool = False
) -> Path:
    """A simulated log of about ``lines`` lines of traffic with every attack, or with only
    ``scenario`` (a ``rempart sim --scenario`` spec) on top of the traffic; with ``care``, its
    ``care.csv`` too (written apart, from the panels as the simulation starts: the same file as
    ``simulate(care=True)``, without simulating the days again)."""
    from rempart.sim import ScenarioSpec, SimOptions

    name = f"detect-{lines}" if scenario is None else f"detect-{lines}-{days}d-{scenario}"
    out = data_dir / name.replace(":", "-").replace(",", "-").replace("=", "")
    accounts = max(10, round(lines / (LINES_PER_ACCOUNT_DAY * days)))
    opts = SimOptions(seed=7, accounts=accounts, days=days)
    if scenario is not None:
        opts = dataclasses.replace(opts, scenarios=(ScenarioSpec.parse(scenario),))

    def make() -> None:
        print(f"simulating {accounts} accounts x {days} days into {out} ...", flush=True)
        # In a fresh interpreter: this process must stay small. Each hunt is started from it,
        # and a child's peak RSS (wait4) counts the parent's memory it was forked with.
        child = multiprocessing.get_context("spawn").Process(target=_simulate, args=(opts, out))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"simulation into {out} failed (exit code {child.exitcode})")

    log = cached_simulation(out, make)
    if care and not (log / "care.csv").exists():
        from rempart.sim.directory import write_care_csv
        from rempart.sim.engine import Simulation

        sim = Simulation(opts)
        rows = write_care_csv(log / "care.csv", sim.accounts, sim.population, opts.seed)
        print(f"wrote {log / 'care.csv'}: {rows:,} relationships", flush=True)
    return log


def _simulate(opts: Any, out: Path) -> None:
    from rempart.sim import simulate

    simulate(opts, out, events=False)


def run_hunt(
    log: Path, workdir: Path, workers: int = 1, care: bool = False
) -> tuple[float, float, list[dict[str, Any]], float]:
    """Wall time, peak RSS (MiB), the alerts written and CPU time of one ``rempart hunt``."""
    cmd = hunt_command(log, workdir, workers, care=care)
    out = workdir / "alerts.jsonl"
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"hunt failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    alerts = [json.loads(line) for line in out.open()]
    return wall, usage.ru_maxrss / 1024, alerts, usage.ru_utime + usage.ru_stime


def score(truth: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    """The hunt's alerts scored against the log's truth as ``rempart eval`` scores its own:
    the attacks detected, and the false positives per 1,000 account-days (the eval's 200
    accounts do not show those that grow with the portal)."""
    from rempart.alerts import Alert
    from rempart.detect.evaluate import fp_accounts, score_run

    accounts, days = truth["options"]["accounts"], truth["options"]["days"]
    parsed = [Alert.from_dict(a) for a in alerts]
    scores, unattributed = score_run(truth, parsed, accounts, days, truth["seed"])
    found = [s.scenario for s in scores if s.detected]
    missed = [s.scenario for s in scores if not s.detected]
    accused = fp_accounts(unattributed)
    by_rule: dict[str, int] = {}
    for a in unattributed:
        by_rule[a.rule_id] = by_rule.get(a.rule_id, 0) + 1
    rules = ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items(), key=lambda x: -x[1]))
    return (
        f"against truth.json: {len(found)} of {len(scores)} attacks detected"
        f"{' (missed: ' + ', '.join(missed) + ')' if missed else ''}; false positives: "
        f"{len(unattributed)} alerts ({rules or 'none'}), {len(accused)} accounts = "
        f"{1000 * len(accused) / (accounts * days):.2f} per 1,000 account-days "
        f"({accounts:,} accounts x {days} days)"
    )


def engine_only(log: Path, runs: int = 3) -> tuple[int, int, float]:
    """Events decoded, events offered (relevant actions only, as ``hunt`` does) and the best
    engine CPU time of ``runs`` on them."""
    from rempart.detect.engine import Engine
    from rempart.detect.loader import load_pack
    from rempart.ingest import iter_batches, load_profile
    from rempart.ingest.normalise import load_directory

    profile = load_profile("tiers-payant")
    specs = load_pack("tiers-payant")
    disclosing = {r.action for r in profile.spec.routes if r.discloses}
    keep = Engine(specs).relevant_actions(disclosing)
    decoded = 0
    events = []
    for b in iter_batches(
        [log / "access.log"], profile=profile, directory=load_directory(log / "directory.csv")
    ):
        for e in b.events():
            decoded += 1
            if keep is None or e.action in keep:
                events.append(e)
    best = float("inf")
    for _ in range(runs):
        engine = Engine(specs, lateness=120)
        started = time.process_time()
        for ev in events:
            engine.process(ev)
        engine.flush()
        best = min(best, time.process_time() - started)
    return decoded, len(events), best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "rempart-bench")
    ap.add_argument("--no-engine-only", action="store_true")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="hunt --workers (1: one core, the issue's target; 2: decode in a child process)",
    )
    ap.add_argument(
        "--log-dir", type=Path, help="existing sim output (access.log + directory.csv) to use"
    )
    ap.add_argument(
        "--scenario",
        help="only this attack (a `rempart sim --scenario` spec) on top of the --lines of "
        "traffic, e.g. stuffing_single_ip:n_accounts=60000,rate=3000 (an adversarial log)",
    )
    ap.add_argument(
        "--care-history",
        action="store_true",
        help="hunt with the log's care.csv, the claims history before the period (written "
        "when missing)",
    )
    args = ap.parse_args()
    log = args.log_dir or ensure_log(
        args.lines, args.data_dir, args.days, args.scenario, args.care_history
    )
    if args.care_history and not (log / "care.csv").exists():
        raise SystemExit(f"{log} has no care.csv (rempart sim --care-history writes one)")
    truth = json.loads((log / "truth.json").read_text())
    n_lines = truth["totals"]["lines"]
    print(
        f"log: {log / 'access.log'} ({n_lines:,} lines, {truth['totals']['accounts']:,} "
        f"account names, {len(truth['attacks'])} attacks); machine: {machine()}"
    )
    walls, cpus, rss = [], [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, peak, alerts, cpu = run_hunt(log, Path(tmp), args.workers, args.care_history)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
        print(
            f"  run {i + 1}: wall {wall:.1f} s, CPU {cpu:.1f} s "
            f"({n_lines / cpu:,.0f} lines per CPU-second), peak RSS {peak:,.0f} MiB, "
            f"{len(alerts)} alerts",
            flush=True,
        )
        if i == 0:
            print(f"  {score(truth, alerts)}", flush=True)
    med, med_cpu = statistics.median(walls), statistics.median(cpus)
    print(
        f"rempart hunt --workers {args.workers}"
        f"{' --care-history' if args.care_history else ''} (whole process, median of {args.runs}): wall {med:.1f} s = "
        f"{n_lines / med:,.0f} lines/s; CPU {med_cpu:.1f} s = {n_lines / med_cpu:,.0f} "
        f"lines/s on one core; peak RSS {max(rss):,.0f} MiB; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if not args.no_engine_only:
        decoded, offered, cpu = engine_only(log)
        print(
            f"engine alone (events pre-parsed, best CPU time of 3): {decoded:,} events "
            f"({offered:,} of relevant actions offered) in {cpu:.2f} s = "
            f"{decoded / cpu:,.0f} events per CPU-second"
        )


if __name__ == "__main__":
    main()
