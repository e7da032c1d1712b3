"""``make bench``: every benchmark of the project, one after the other, figures printed.

Each script prints its own result; the command that produced a figure is the script's
line here. Benchmarks are never part of the test suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["ingest_throughput.py"],
    ["detect_hunt.py"],
    ["detect_hunt.py", "--workers", "2", "--no-engine-only"],
    ["detect_hunt.py", "--lines", "10000000", "--runs", "3", "--no-engine-only"],
    [
        "detect_hunt.py",
        *("--lines", "60000", "--days", "1", "--runs", "1"),
        *("--scenario", "stuffing_single_ip:n_accounts=60000,rate=3000"),
    ],
    [
        "detect_hunt.py",
        *("--lines", "60000", "--days", "1", "--runs", "1"),
        *("--scenario", "mass_harvest:count=60000,rate=3000"),
    ],
    ["detect_false_positives.py", "--accounts", "6000", "--days", "14"],
    ["detect_memory.py"],
    ["history_search.py"],
    ["respond_check.py"],
    ["cases_affected.py"],
    ["protect_scan.py"],
    ["sim_throughput.py"],
]


def main() -> int:
    failed = 0
    for script, *args in SCRIPTS:
        path = HERE / script
        if not path.exists():
            continue
        print(f"== {script} {' '.join(args)}", flush=True)
        rc = subprocess.run([sys.executable, str(path), *args]).returncode
        if rc != 0:
            print(f"!! {script} failed with exit code {rc}", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
