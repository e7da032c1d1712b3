"""Rempart vs fail2ban vs CrowdSec on the same simulated logs (entry point: bench/peers/run.sh).

Steps: generate logs with ``rempart sim`` (a ~1M-line log, one log per attack scenario, an
attack-free calibration log; a ~10M-line log with PEERS_FULL=1), calibrate fail2ban's counts on
the attack-free log, run every tool on every log, measure the large logs (warm-up then
PEERS_RUNS runs, medians), score detections against truth.json, write RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import cached_simulation
from peers_results import write_results
from peers_scoring import Detection, false_positive_keys, load_truth, parse_time, score_by_scenario
from peers_tools import (
    HERE,
    PYTHON_BIN,
    Measure,
    render_crowdsec,
    render_fail2ban,
    run_crowdsec,
    run_fail2ban_regex,
    run_fail2ban_server,
    run_rempart,
)

SCENARIOS = [
    "brute_force",
    "password_spraying",
    "stuffing_single_ip",
    "stuffing_distributed",
    "mass_harvest",
    "slow_harvest",
    "insider",
]
SEED = 7
CALIBRATION_SEED = 1007
DAYS = int(os.environ.get("PEERS_DAYS", "7"))
#: Size of the "1M" log (smaller for a smoke test of the bench itself).
LINES_1M = int(os.environ.get("PEERS_LINES", "1000000"))
SCENARIO_ACCOUNTS = int(os.environ.get("PEERS_SCENARIO_ACCOUNTS", "50"))

LINE_RE = re.compile(r'^(\S+) - (\S+) \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) ')
READ_RE = re.compile(r"^/api/v1/beneficiaires/[0-9][0-9AB][0-9]{13}/droits$")


def log(msg: str) -> None:
    print(f"[peers {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def sim_start(days: int) -> str:
    """A Monday whose simulated week ends before yesterday.

    fail2ban clamps log times in the future to "now" and CrowdSec's replay has no such issue,
    but the logs must be the same for every tool, so they are all simulated in the past."""
    latest = date.today() - timedelta(days=days + 1)
    return (latest - timedelta(days=latest.weekday())).isoformat()


def sim(out: Path, accounts: int, days: int, seed: int, extra: list[str]) -> dict[str, Any]:
    truth = out / "truth.json"
    extra = ["--start", sim_start(days), "--no-events", *extra]
    args = [
        str(PYTHON_BIN / "rempart"),
        "sim",
        "--seed",
        str(seed),
        "--accounts",
        str(accounts),
        "--days",
        str(days),
        "--out",
        str(out),
        *extra,
    ]

    def make() -> None:
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        lines = json.loads(truth.read_text())["totals"]["lines"]
        log(f"sim {out.name}: {lines} lines in {time.monotonic() - started:.0f} s")

    cached_simulation(out, make, made_by=args)
    return dict(json.loads(truth.read_text()))


def accounts_for(lines: int, work: Path) -> int:
    """Accounts needed for ~``lines`` lines over DAYS days, from a small attack-free probe."""
    probe = sim(work / "logs" / "probe", 100, DAYS, SEED, ["--no-attacks"])
    per_account = probe["totals"]["lines"] / 100
    return max(10, round(lines / per_account))


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def calibrate_fail2ban(access_log: Path) -> dict[str, int]:
    """fail2ban thresholds: highest count of any entity on attack-free traffic, plus 10%."""
    counts: dict[str, Counter[str]] = {
        k: Counter() for k in ("LOGIN_IP", "LOGIN_ACCOUNT", "PROBE_IP", "READS_IP", "READS_ACCOUNT")
    }
    with access_log.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = LINE_RE.match(line)
            if not m:
                continue
            ip, user, method, path, status = m.groups()
            if method == "POST" and path == "/auth/login" and status == "401":
                counts["LOGIN_IP"][ip] += 1
                counts["LOGIN_ACCOUNT"][user] += 1
            if status == "404":
                counts["PROBE_IP"][ip] += 1
            if method == "GET" and status == "200" and READ_RE.match(path):
                counts["READS_IP"][ip] += 1
                counts["READS_ACCOUNT"][user] += 1
    floor = {"LOGIN_IP": 5, "LOGIN_ACCOUNT": 5, "PROBE_IP": 10, "READS_IP": 20, "READS_ACCOUNT": 20}
    return {k: max(floor[k], int(max(c.values(), default=0) * 1.1) + 1) for k, c in counts.items()}


def findtime_for(truth: dict[str, Any]) -> int:
    """fail2ban drops lines older than now - findtime at start-up: reach back to the first line."""
    return int(time.time() - parse_time(truth["start"])) + 86400


def median_measure(runs: list[Measure]) -> Measure:
    return Measure(
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.rss_mb for r in runs),
    )


def measure_log(
    name: str,
    access_log: Path,
    truth: dict[str, Any],
    thresholds: dict[str, int],
    runs: dict[str, int],
    work: Path,
) -> dict[str, Any]:
    """Per tool: a warm-up on the first 20k lines, then ``runs[tool]`` timed runs on the log."""
    lines = count_lines(access_log)
    warm = work / "logs" / f"{name}-warmup.log"
    with access_log.open("rb") as src, warm.open("wb") as dst:
        for i, line in enumerate(src):
            if i >= 20000:
                break
            dst.write(line)
    runs_dir = work / "runs" / name
    cs_root = render_crowdsec(work)
    f2b_conf = render_fail2ban(work, access_log, findtime_for(truth), thresholds)
    f2b_warm = render_fail2ban(work / "warm", warm, findtime_for(truth), thresholds)
    out: dict[str, Any] = {"lines": lines, "tools": {}}
    detections: dict[str, list[Detection]] = {}

    def record(tool: str, measures: list[Measure]) -> None:
        med = median_measure(measures)
        out["tools"][tool] = {
            "wall": med.wall,
            "cpu": med.cpu,
            "rss_mb": med.rss_mb,
            "lines_per_s": lines / med.wall,
            "lines_per_cpu_s": lines / med.cpu,
            "runs": len(measures),
            "load_after": round(os.getloadavg()[0], 1),
            "all_wall": [m.wall for m in measures],
        }
        log(
            f"{name} {tool}: median of {len(measures)}: wall {med.wall:.1f} s, "
            f"{lines / med.wall:,.0f} lines/s, CPU {med.cpu:.1f} s, RSS {med.rss_mb:.0f} MB"
        )

    def with_detections(tool: str, run: Callable[[int], tuple[Measure, list[Detection]]]) -> None:
        measures = []
        for i in range(runs[tool]):
            measure, detections[tool.split("-")[0]] = run(i)
            measures.append(measure)
        record(tool, measures)

    if runs["rempart"]:
        run_rempart(warm, runs_dir, "rempart-warm")
        with_detections("rempart", lambda i: run_rempart(access_log, runs_dir, f"rempart-{i}"))
    run_crowdsec(cs_root, warm, "crowdsec-warm")
    with_detections("crowdsec", lambda i: run_crowdsec(cs_root, access_log, f"crowdsec-{i}"))
    run_fail2ban_server(f2b_warm)
    with_detections("fail2ban-server", lambda i: run_fail2ban_server(f2b_conf))
    run_fail2ban_regex(warm, runs_dir, "f2b-regex-warm")
    record(
        "fail2ban-regex",
        [
            run_fail2ban_regex(access_log, runs_dir, f"f2b-regex-{i}")
            for i in range(runs["fail2ban-regex"])
        ],
    )
    out["detection"] = score_log(access_log.parent / "truth.json", detections, runs_dir)
    return out


def score_log(
    truth_path: Path, detections: dict[str, list[Detection]], keep: Path | None = None
) -> dict[str, Any]:
    """Score each tool; with ``keep``, also save the normalised detections there (JSONL)."""
    attacks = load_truth(truth_path)
    result: dict[str, Any] = {}
    for tool, dets in detections.items():
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            with (keep / f"{tool}.detections.jsonl").open("w", encoding="utf-8") as fh:
                for d in dets:
                    row = {
                        "rule": d.rule,
                        "time": d.time,
                        "key": d.key,
                        "names": sorted(d.names),
                        "targets": sorted(d.targets),
                    }
                    fh.write(json.dumps(row) + "\n")
        fps = sorted(false_positive_keys(attacks, dets))
        result[tool] = {
            "alerts": len(dets),
            "false_positive_entities": len(fps),
            "false_positive_examples": fps[:5],
            "scenarios": [asdict(s) for s in score_by_scenario(attacks, dets)],
        }
    return result


def run_scenarios(work: Path, thresholds: dict[str, int], with_rempart: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    cs_root = render_crowdsec(work)
    for scenario in SCENARIOS:
        out = work / "logs" / f"scenario-{scenario}"
        truth = sim(out, SCENARIO_ACCOUNTS, DAYS, SEED, ["--scenario", scenario])
        access_log = out / "access.log"
        runs_dir = work / "runs" / f"scenario-{scenario}"
        detections: dict[str, list[Detection]] = {}
        if with_rempart:
            _, detections["rempart"] = run_rempart(access_log, runs_dir, "rempart")
        _, detections["crowdsec"] = run_crowdsec(cs_root, access_log, f"scenario-{scenario}")
        _, detections["fail2ban"] = run_fail2ban_server(
            render_fail2ban(work, access_log, findtime_for(truth), thresholds)
        )
        results[scenario] = {
            "lines": truth["totals"]["lines"],
            **score_log(out / "truth.json", detections, runs_dir),
        }
        log(
            f"scenario {scenario}: "
            + ", ".join(
                f"{tool} {detected_summary(r)} FP {r['false_positive_entities']}"
                for tool, r in results[scenario].items()
                if isinstance(r, dict)
            )
        )
    return results


def detected_summary(result: dict[str, Any]) -> str:
    return ",".join(f"{s['detected']}/{s['attacks']}" for s in result["scenarios"])


def git_commit() -> str:
    """HEAD of the checkout the bench ran from, "+dirty" when Rempart's sources had edits."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src/rempart"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (head or "?") + ("+dirty" if dirty else "")


def has_hunt() -> bool:
    proc = subprocess.run(
        [str(PYTHON_BIN / "rempart"), "hunt", "--help"], capture_output=True, check=False
    )
    return proc.returncode == 0


def tool_versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        text = (proc.stdout + proc.stderr).strip().splitlines()
        return text[0] if text else "?"

    return {
        "rempart": first_line([str(PYTHON_BIN / "rempart"), "--version"]),
        "crowdsec": first_line(["crowdsec", "-version"]).split("version: ")[-1],
        "fail2ban": first_line(["fail2ban-server", "--version"]),
        "python": platform.python_version(),
    }


def machine() -> dict[str, str]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem_kb = next(
        int(ln.split()[1])
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kb / 1048576:.0f} GiB",
        "kernel": platform.release(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("PEERS_RUNS", "3")))
    parser.add_argument("--full", action="store_true", default=os.environ.get("PEERS_FULL") == "1")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--scenarios-only",
        action="store_true",
        help="rerun the per-scenario logs only, keeping the other figures of work/results.json",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite RESULTS.md from work/results.json"
    )
    args = parser.parse_args()
    work: Path = args.work.resolve()
    if args.render_only:
        write_results(json.loads((work / "results.json").read_text()), args.results)
        return 0
    if args.scenarios_only:
        report = json.loads((work / "results.json").read_text())
        report["scenarios"] = run_scenarios(work, report["fail2ban_thresholds"], has_hunt())
        (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
        write_results(report, args.results)
        return 0
    (work / "logs").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    accounts_1m = accounts_for(LINES_1M, work)
    log(f"calibration log: attack-free, {accounts_1m} accounts (the 1M log's size)")
    calib = work / "logs" / "calibration"
    sim(calib, accounts_1m, DAYS, CALIBRATION_SEED, ["--no-attacks"])
    thresholds = calibrate_fail2ban(calib / "access.log")
    log(f"fail2ban thresholds: {thresholds}")
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": tool_versions(),
        "commit": git_commit(),
        "command": "make bench-peers" + ("  (PEERS_FULL=1)" if args.full else ""),
        "days": DAYS,
        "scenario_accounts": SCENARIO_ACCOUNTS,
        "fail2ban_thresholds": thresholds,
        "calibration_accounts": accounts_1m,
        "sizes": {},
    }
    with_rempart = has_hunt()
    if not with_rempart:
        log("`rempart hunt` is not available in this checkout: peers only")
    report["scenarios"] = run_scenarios(work, thresholds, with_rempart)
    peer_runs = int(os.environ.get("PEERS_PEER_RUNS", "1"))
    runs_1m = {
        "rempart": args.runs if with_rempart else 0,
        "crowdsec": peer_runs,
        "fail2ban-server": peer_runs,
    }
    runs_1m["fail2ban-regex"] = peer_runs
    sizes = [("1M", LINES_1M, runs_1m)]
    if args.full:
        n10 = int(os.environ.get("PEERS_RUNS_10M", "1"))
        sizes.append(("10M", 10_000_000, {k: n10 if v else 0 for k, v in runs_1m.items()}))
    for name, target, runs in sizes:
        accounts = accounts_for(target, work)
        out = work / "logs" / name
        truth = sim(out, accounts, DAYS, SEED, [])
        report["sizes"][name] = {
            "accounts": accounts,
            **measure_log(name, out / "access.log", truth, thresholds, runs, work),
        }
    report["elapsed_s"] = time.monotonic() - began
    (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
    write_results(report, args.results)
    log(
        f"done in {report['elapsed_s'] / 60:.1f} min; "
        f"wrote {args.results} and {work / 'results.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
