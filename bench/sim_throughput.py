"""Simulator throughput: lines per second for about one million lines.

    .venv/bin/python bench/sim_throughput.py [--lines 1000000] [--runs 3]

Prints, for the median of ``--runs`` runs: generation only (requests in memory), the full
``simulate`` writing access.log + events.jsonl + truth.json, and access.log only; plus peak
memory (ru_maxrss) of the process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rempart.sim import SimOptions, simulate
from rempart.sim.engine import Simulation

#: Legitimate lines per account and simulated day, all kinds mixed, over a week (measured).
LINES_PER_ACCOUNT_DAY = 107


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    accounts = max(10, round(args.lines / (LINES_PER_ACCOUNT_DAY * args.days)))
    opts = SimOptions(seed=args.seed, accounts=accounts, days=args.days)
    print(f"accounts={accounts} days={args.days} (target ~{args.lines:,} lines)")

    results: dict[str, list[tuple[float, float]]] = {"gen": [], "full": [], "log": []}
    lines = 0

    def timed(key: str, fn: Callable[[], int]) -> None:
        nonlocal lines
        wall, cpu = time.perf_counter(), time.process_time()
        lines = fn()
        results[key].append(
            (lines / (time.perf_counter() - wall), lines / (time.process_time() - cpu))
        )

    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            timed("gen", lambda: sum(len(b) for b in Simulation(opts).batches()))
            timed("full", lambda: simulate(opts, Path(tmp) / "a").lines)
            timed("log", lambda: simulate(opts, Path(tmp) / "b", events=False).lines)
    print(f"lines: {lines:,}   (wall = elapsed time; cpu = this process's CPU time)")
    for key, label in (
        ("gen", "generation only (in memory)"),
        ("full", "simulate: access.log + events.jsonl"),
        ("log", "simulate: access.log only"),
    ):
        wall = statistics.median(w for w, _ in results[key])
        cpu = statistics.median(c for _, c in results[key])
        print(f"{label:<38} {wall:>10,.0f} lines/s wall {cpu:>10,.0f} lines/s cpu")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
