"""Key rotation of a large file: completes, resumes after a kill, verifies.

    .venv/bin/python bench/protect_rotate.py [--gb 1.0] [--kill-after 20]

Writes bench/out/protect/rotate/data.csv (about --gb GB: an id, a NIR-like value encrypted
under k1, a padding column), then runs ``rempart protect rotate`` to k2 in a subprocess, kills
it with SIGKILL after --kill-after seconds, runs it again (it resumes from its checkpoint and
verifies every value under the new key before renaming), and finally checks a sample of rows
against the plaintexts it generated. Prints sizes, times and MB/s.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from rempart.protect.crypto import CellCipher, Keyring

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "protect" / "rotate"
RUN = [sys.executable, "-c", "from rempart.cli import main; main()"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--kill-after", type=float, default=20.0)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ring = Keyring()
    ring.add("k1")
    ring.add("k2", activate=False)
    keyfile = OUT / "keys"
    keyfile.write_text(f"k2:{ring.keys['k2'].hex()}\nk1:{ring.keys['k1'].hex()}\n")
    keyfile.chmod(0o600)
    data = OUT / "data.csv"
    for stale in OUT.glob(".data.csv*"):
        stale.unlink()
    rng = random.Random(7)
    c = CellCipher(ring, "k1")
    t = time.perf_counter()
    sample: dict[int, str] = {}
    pad = "x" * 80
    with open(data, "w", encoding="utf-8") as fh:
        fh.write("id,nir,note\n")
        i = 0
        target = int(args.gb * 1e9)
        while fh.tell() < target:
            lines = []
            for _ in range(10_000):
                v = str(rng.randrange(10**14, 10**15))
                if i % 100_003 == 0:
                    sample[i] = v
                lines.append(f"{i},{c.encrypt('nir', v)},{pad}\n")
                i += 1
            fh.write("".join(lines))
    size = data.stat().st_size
    print(f"generated {size / 1e9:.2f} GB, {i} rows in {time.perf_counter() - t:.0f} s")

    cmd = [
        *RUN,
        "protect",
        "rotate",
        str(data),
        "-k",
        "nir",
        "--key-file",
        str(keyfile),
        "--checkpoint-every",
        "200000",
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=args.kill_after)
        print("rotation finished before the kill: raise --gb or lower --kill-after")
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"killed (SIGKILL) after {time.perf_counter() - t:.0f} s")
    t2 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = time.perf_counter() - t2
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(" ".join(out.stdout.split()) if out.stdout.strip() else out.stderr.strip())
    if out.returncode:
        sys.exit(out.returncode)
    print(
        f"resumed run: {took:.0f} s wall, {cpu:.0f} s CPU ({size / cpu / 1e6:.1f} MB/s of CPU, "
        f"rotation + verification); total {time.perf_counter() - t:.0f} s"
    )
    c2 = CellCipher(ring, "k2")
    with open(data, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh)):
            if n in sample:
                assert row["nir"].startswith("enc:v1:k2:")
                assert c2.decrypt("nir", row["nir"]) == sample[n]
    print(f"spot check: {len(sample)} sampled rows decrypt under k2 to the generated values")


if __name__ == "__main__":
    main()
