"""Time the first-seen history's search (``rempart.detect.history._holds``) on long, cold
histories: 20,000 accounts x 2,000 beneficiaries (160 MB of runs, far beyond the processor's
cache), one million searches of random accounts, half of them for a beneficiary the account
holds. The 10M-line benchmark log does not show it: over its 14 days most accounts read fewer
than 256 distinct beneficiaries, which stay in the set of recent additions, never merged into
a run. A deployment with 90 days of history searches runs of thousands.

    .venv/bin/python bench/history_search.py
"""

from __future__ import annotations

import random
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine

from rempart.detect import history


def main() -> None:
    rng = random.Random(1)
    accounts = []
    for _ in range(20_000):
        values = sorted({rng.getrandbits(32) for _ in range(2_000)})
        accounts.append((array("I", values).tobytes(), values))
    probes = []
    for _ in range(1_000_000):
        run, values = accounts[rng.randrange(len(accounts))]
        h = values[rng.randrange(len(values))] if rng.random() < 0.5 else rng.getrandbits(32)
        probes.append((run, h))
    holds = history._holds
    started = time.process_time()
    found = sum(1 for run, h in probes if holds(run, h))
    spent = time.process_time() - started
    print(f"{history.__file__}; {machine()}")
    print(f"{spent / len(probes) * 1e9:.0f} ns per search (loop included), {found:,} found")


if __name__ == "__main__":
    main()
