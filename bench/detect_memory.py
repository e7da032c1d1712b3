"""Memory of the detection state for N accounts with D days of per-account beneficiary history.

Builds the engine's real structures directly (running 360 M events through the engine would take
hours): per account, a ``BeneficiaryHistory`` of distinct beneficiaries read over the period (a
sorted array of 32-bit hashes), and per group of baseline rules sharing their day state a ``_Day``
with each member rule's 30-day history; then reports the peak RSS of the process.

    .venv/bin/python bench/detect_memory.py --accounts 100000 --days 90
    .venv/bin/python bench/detect_memory.py --care-per-account 1000   # with a claims history

``--care-per-account``: beneficiaries each account has on record in the claims history
(docs/care-history.md) and did not read in the period, added to its history as
``Engine.add_care_history`` adds them.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import time
from array import array

from rempart.detect.baseline import BaselineRule, _Day, _ReadDays
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument(
        "--reads-per-day",
        type=float,
        default=45.0,
        help="mean rights checks per account-day (sim mix: ~45)",
    )
    ap.add_argument(
        "--new-share",
        type=float,
        default=0.5,
        help="share of a day's reads on beneficiaries new to the account",
    )
    ap.add_argument(
        "--care-per-account",
        type=int,
        default=0,
        help="care relationships per account not read in the period (docs/care-history.md)",
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    base = rss_mib()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    engine = Engine(load_pack("tiers-payant"))
    baselines = [r for r in engine.rules if isinstance(r, BaselineRule)]
    trackers: list[_ReadDays] = list({id(r.tracker): r.tracker for r in baselines}.values())
    total = 0
    for i in range(args.accounts):
        name = f"PH{i:06d}"
        mean = args.reads_per_day * args.new_share * args.days
        n = max(0, int(rng.gauss(mean, mean**0.5))) + args.care_per_account
        raw = array("I")
        raw.frombytes(os.urandom(4 * n))
        values = array("I", sorted(set(raw)))
        engine.history.observe(name, 0)
        hist = engine.history.accounts[name]
        hist.recent = None
        hist.arr = values.tobytes()
        total += len(values)
        for tracker in trackers:
            st = tracker.state[name] = _Day(20000, "pharmacie", len(tracker.members))
            for h in st.hists:
                h.history = array("f", [max(0, round(rng.gauss(30, 5))) for _ in range(30)])
                h.days = args.days
    gc.collect()
    built = time.perf_counter() - t0
    peak = rss_mib()
    print(
        f"accounts: {args.accounts:,}  days: {args.days}  distinct beneficiaries per account "
        f"(mean, {args.care_per_account:,} of them on record only): {total / args.accounts:,.0f}"
        f"  total history entries: {total:,}"
    )
    print(
        f"baseline rules with per-account state: {len(baselines)} "
        f"(in {len(trackers)} groups sharing their day state)"
    )
    print(
        f"peak RSS: {peak:,.0f} MiB (interpreter + pack before: {base:,.0f} MiB); "
        f"built in {built:.1f} s"
    )
    print(f"history payload: {total * 4 / 2**20:,.0f} MiB of 32-bit hashes")


if __name__ == "__main__":
    main()
