"""Ingestion benchmark: parse + normalise + pseudonymise + archive on a simulated 1M-line log.

Whole process (``rempart ingest FILE --archive DIR``), one warm-up then N runs, medians.
Usage: python bench/ingest_throughput.py [--accounts 1100] [--days 7] [--runs 3]

``--decode-only``: in-process CPU time (``time.process_time``) of ``iter_batches`` to ``Event``
objects, with ``keep_actions`` (the actions detection reads), and per line (``columnar=False``,
the former path), on ``--log FILE`` or the simulated log; best of ``--runs``.
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
    ap.add_argument("--decode-only", action="store_true")
    ap.add_argument("--log", type=Path, default=None)
    ap.add_argument("--no-per-line", action="store_true", help="skip the former per-line path")
    args = ap.parse_args()
    if args.decode_only:
        decode_only(args.log or simulated_log(args.accounts, args.days) / "access.log", args)
        return
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


KEEP = frozenset({"auth.login", "beneficiary.read", "claim.create"})


def decode_only(log: Path, args: argparse.Namespace) -> None:
    import time

    from rempart.ingest.pipeline import iter_batches
    from rempart.protect.tokens import Tokenizer, generate_key

    def once(**kw: object) -> tuple[float, int, int]:
        tok = Tokenizer(generate_key())  # fresh caches: every run tokenises every id
        started = time.process_time()
        lines = built = 0
        for batch in iter_batches([log], tokenizer=tok, **kw):  # type: ignore[arg-type]
            lines += len(batch)
            built += len(batch.events())
        return time.process_time() - started, lines, built

    modes: dict[str, dict[str, object]] = {
        "columnar, all events": {},
        "columnar, keep_actions": {"keep_actions": KEEP},
    }
    if not args.no_per_line:
        modes["per line (former path), all events"] = {"columnar": False}
    results = {}
    for name, kw in modes.items():
        runs = [once(**kw) for _ in range(args.runs)]
        cpu = min(r[0] for r in runs)
        results[name] = {
            "cpu_s_best": round(cpu, 2),
            "cpu_s_median": round(median([r[0] for r in runs]), 2),
            "events": runs[0][1],
            "events_built": runs[0][2],
            "lines_per_cpu_s": round(runs[0][1] / cpu),
        }
    print(
        json.dumps(
            {
                "benchmark": "ingest decode (in-process CPU)",
                "log": str(log),
                "machine": machine(),
                "runs": args.runs,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
