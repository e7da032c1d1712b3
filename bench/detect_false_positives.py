"""Alerts on attack-free traffic at a portal's scale, by rule: every one is a false positive.

Simulates ``--accounts`` accounts for ``--days`` days without any attack, sends the log through
the real ingestion and the shipped ``tiers-payant`` pack, and prints the alerts by rule and the
accounts they name per 1,000 account-days. ``--forgotten-share`` sets the share of sessions
that start with a forgotten password (the simulator's default is 0.5%), to see how the login
rules bear more of them.

    .venv/bin/python bench/detect_false_positives.py --accounts 6000 --days 14
    .venv/bin/python bench/detect_false_positives.py --accounts 6000 --days 14 \\
        --forgotten-share 0.05
    .venv/bin/python bench/detect_false_positives.py --accounts 6000 --days 14 --care-history

About 1.5 minutes and 1 GiB for 6,000 accounts x 14 days (8.8M lines); the log is simulated
into a temporary directory and removed afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=6000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--forgotten-share", type=float, default=None)
    ap.add_argument(
        "--care-history",
        action="store_true",
        help="give the engine the claims history before the period (docs/care-history.md)",
    )
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args()

    from rempart.detect.engine import Engine
    from rempart.detect.evaluate import fp_accounts, replay
    from rempart.detect.loader import load_pack
    from rempart.sim import SimOptions, simulate

    opts = SimOptions(seed=args.seed, accounts=args.accounts, days=args.days, attacks=False)
    if args.forgotten_share is not None:
        opts = dataclasses.replace(opts, forgotten_share=args.forgotten_share)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = simulate(opts, Path(tmp), events=False, care=args.care_history)
        simulated = time.perf_counter()
        engine = replay(result, Engine(load_pack("tiers-payant")))
    alerts = list(engine.alerts.values())
    account_days = args.accounts * args.days
    named = fp_accounts(alerts)
    report = {
        "command": "bench/detect_false_positives.py " + " ".join(_argv(args)),
        "lines": result.lines,
        "account_days": account_days,
        "forgotten_share": opts.forgotten_share,
        "care_history": args.care_history,
        "alerts_by_rule": dict(Counter(a.rule_id for a in alerts).most_common()),
        "accounts_named": len(named),
        "per_1000_account_days": round(1000 * len(named) / account_days, 3),
        "seconds": {
            "simulate": round(simulated - started, 1),
            "hunt": round(time.perf_counter() - simulated, 1),
        },
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"{args.accounts} accounts x {args.days} days (seed {args.seed}), {result.lines:,} lines,"
        f" forgotten passwords in {opts.forgotten_share:.1%} of sessions"
        + (", with the claims history" if args.care_history else "")
    )
    for rule, n in report["alerts_by_rule"].items():
        print(f"  {rule:12} {n:5d} alerts")
    print(
        f"{len(alerts)} alerts naming {len(named)} accounts: "
        f"{report['per_1000_account_days']} per 1,000 account-days "
        f"(simulated in {report['seconds']['simulate']} s, hunted in {report['seconds']['hunt']} s)"
    )


def _argv(args: argparse.Namespace) -> list[str]:
    out = [f"--accounts {args.accounts}", f"--days {args.days}", f"--seed {args.seed}"]
    if args.forgotten_share is not None:
        out.append(f"--forgotten-share {args.forgotten_share}")
    if args.care_history:
        out.append("--care-history")
    return out


if __name__ == "__main__":
    main()
