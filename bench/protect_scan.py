"""Scanner throughput (MB/s on one core) and memory on logs and CSV.

    .venv/bin/python bench/protect_scan.py [--big-gb 1.0]

Inputs, written under bench/out/protect/ (gitignored):
* sim-access.log / sim-events.jsonl: a week of the reference portal from ``rempart sim``
  (realistic density: identifiers in the URLs of beneficiary reads);
* dense.log: the test corpus's access log repeated (60% of lines carry a NIR-shaped value);
* export.csv (10 MB): 8 identifier columns per row (worst case: nearly every field a finding);
* clean.csv: the same shape without identifiers (upper bound: nothing reaches Python);
* big.log: sim-access.log repeated to --big-gb (constant memory on files larger than chunks).
Each file is scanned in a fresh process; MB/s is CPU time of the scan (the machine is shared),
peak RSS is the child's.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "protect"
sys.path.insert(0, str(ROOT / "tests" / "protect"))


def child(path: str) -> None:
    from rempart.protect.scanner import scan

    scan([ROOT / "tests" / "protect" / "protect_corpus.py"])  # warm-up (imports)
    cpu, wall = time.process_time(), time.perf_counter()
    report = scan([Path(path)], max_findings=10_000)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        json.dumps(
            {
                "bytes": report.bytes_scanned,
                "cpu": cpu,
                "wall": wall,
                "findings": sum(report.by_kind().values()),
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def repeat(src: Path, dst: Path, target: int) -> None:
    data = src.read_bytes()
    with open(dst, "wb") as fh:
        written = 0
        while written < target:
            fh.write(data)
            written += len(data)


def prepare(big_gb: float) -> list[Path]:
    import protect_corpus as pc

    OUT.mkdir(parents=True, exist_ok=True)
    sim = OUT / "sim"
    if not (sim / "access.log").exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from rempart.cli import main; main()",
                "sim",
                "--out",
                str(sim),
                "--seed",
                "3",
                "--accounts",
                "200",
                "--days",
                "7",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    corpus = OUT / "corpus"
    if not (corpus / "access.log").exists():
        pc.write_corpus(corpus, seed=5, lines=20_000)
    files = {"sim-access.log": sim / "access.log", "sim-events.jsonl": sim / "events.jsonl"}
    dense = OUT / "dense.log"
    if not dense.exists():
        repeat(corpus / "access.log", dense, 50_000_000)
    export = OUT / "export.csv"
    if not export.exists():
        repeat(corpus / "patients.csv", export, 10_000_000)
    clean = OUT / "clean.csv"
    if not clean.exists():
        rng = random.Random(1)
        with open(clean, "w") as fh:
            fh.write("id,ts,montant,quantite,code\n")
            while fh.tell() < 50_000_000:
                fh.write(
                    "".join(
                        f"{rng.randrange(10**6)},2026-11-{rng.randint(1, 28):02d}T10:00:00,"
                        f"{rng.random() * 100:.2f},{rng.randrange(100)},A{rng.randrange(999)}\n"
                        for _ in range(1000)
                    )
                )
    big = OUT / "big.log"
    if not big.exists() or big.stat().st_size < big_gb * 1e9 * 0.9:
        repeat(sim / "access.log", big, int(big_gb * 1e9))
    files |= {"dense.log": dense, "export.csv": export, "clean.csv": clean, "big.log": big}
    return list(files.items())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-gb", type=float, default=1.0)
    args = ap.parse_args()
    print("| input | size (MB) | findings | MB/s (CPU, 1 core) | MB/s (wall) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    results = {}
    for name, path in prepare(args.big_gb):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout)
        results[name] = {"mb": round(r["bytes"] / 1e6, 1), "findings": r["findings"],
                         "mb_per_s_cpu": round(r["bytes"] / r["cpu"] / 1e6, 1),
                         "mb_per_s_wall": round(r["bytes"] / r["wall"] / 1e6, 1),
                         "peak_rss_mb": round(r["rss_mb"])}  # fmt: skip
        x = results[name]
        print(f"| {name} | {x['mb']:.0f} | {x['findings']} | {x['mb_per_s_cpu']} "
              f"| {x['mb_per_s_wall']} | {x['peak_rss_mb']} |", flush=True)  # fmt: skip
    print(json.dumps({"bench": "protect_scan", "results": results}))


if __name__ == "__main__":
    main()
