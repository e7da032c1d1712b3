"""Ingestion benchmark: parse + normalise + pseudonymise + archive on a simulated 1M-line log.

Whole process (``rempart ingest FILE --archive DIR``), one warm-up then N runs, medians.
Usage: python bench/ingest_throughput.py [--accounts 1100] [--days 7] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, PY, machine, measure_isolated, median, simulated_log


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1100)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sim = simulated_log(args.accounts, args.days)
    log = sim / "access.log"
    lines = sum(1 for _ in log.open("rb"))
    archive = OUT / "ingest-archive"
    shutil.rmtree(archive, ignore_errors=True)
    cmd = [
        PY,
        "-m",
        "rempart",
        "ingest",
        str(log),
        "--archive",
        str(archive),
        "--quarantine",
        str(OUT / "ingest-quarantine"),
        "--directory",
        str(sim / "directory.csv"),
        "--json",
    ]
    runs = measure_isolated(cmd, runs=args.runs)
    wall = median([r.wall for r in runs])
    cpu = median([r.cpu for r in runs])
    rss = max(r.max_rss_mib for r in runs)
    summary = json.loads(runs[-1].stdout)
    result = {
        "benchmark": "ingest (parse+normalise+pseudonymise+archive)",
        "machine": machine(),
        "lines": lines,
        "runs": args.runs,
        "wall_s_median": round(wall, 2),
        "cpu_s_median": round(cpu, 2),
        "lines_per_s_wall": round(lines / wall),
        "lines_per_cpu_s": round(lines / cpu),
        "peak_rss_mib": round(rss),
        "events": summary["events"],
        "quarantined": summary["quarantined"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
