"""Compare the CPU time of ``rempart hunt`` for two builds run at the same time, one per core.

This machine's speed drifts by a fifth within the hour, more than most changes being measured:
two runs of one build a few minutes apart took 51.9 and 43.6 CPU-s on the 10M-line log. Two
builds started together see the same phase of the machine, so the difference of their CPU
times is the figure; two copies of one build (``--base`` equal to the tree's commit) differed
by +0.2% and +0.8% on the 10M-line log, by +1.7% in one round on the 1M-line log (shorter
runs). Both processes share the cache and the memory bus, so each run takes about what a
single run takes in a slow phase: compare the two, not these times with single runs.

The base build is a wheel of ``--base`` (a commit of this repository, built once and cached
under ``bench/out/builds``), put first on ``PYTHONPATH``; the other is the tree's virtual
environment as installed (``make`` builds it). Both run ``rempart hunt --workers 1`` on the
same log, and their alerts must be byte-identical (reported).

    .venv/bin/python bench/same_time.py --base a33d0e5 --log-dir /tmp/rempart-bench/detect-10000000
    .venv/bin/python bench/same_time.py --base HEAD --rounds 2   # two copies: the method's noise
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, ROOT, hunt_command, machine

from rempart.protect.tokens import load_or_create_key_file


def base_site(ref: str) -> Path:
    """An unpacked wheel of commit ``ref`` (built once per commit)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise SystemExit(f"{ref!r} is not a commit of this repository")
    commit = found.stdout.strip()
    site = OUT / "builds" / commit
    if (site / "rempart").is_dir():
        return site
    print(f"building a wheel of {commit[:12]} ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
        subprocess.run(["git", "-C", str(src), "checkout", "-q", commit], check=True)
        wheels = Path(tmp) / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
            check=True,
        )
        (wheel,) = wheels.glob("*.whl")
        partial = site.with_name(site.name + ".partial")
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(partial)
        partial.rename(site)
    return site


def same_time(site: Path, log_dir: Path, work: Path) -> tuple[float, float]:
    """CPU seconds of the base build and of the tree's, started together (one token key)."""
    key = work / "token.key"
    procs = []
    for side, env in (
        ("base", dict(os.environ, PYTHONPATH=str(site))),
        ("tree", dict(os.environ)),
    ):
        cmd = hunt_command(log_dir, work / side, key=key)
        with (work / side / "stderr.txt").open("wb") as err:  # a file: no pipe to fill
            procs.append(
                (side, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err))
            )
    cpu = []
    for side, proc in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            last = (work / side / "stderr.txt").read_text(errors="replace").strip().splitlines()
            raise SystemExit(f"hunt ({side}) failed: {last[-1] if last else f'status {status}'}")
        cpu.append(usage.ru_utime + usage.ru_stime)
    return cpu[0], cpu[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="commit of the base build (built once)")
    ap.add_argument("--log-dir", type=Path, default=ROOT / "bench/peers/work/logs/1M")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not (args.log_dir / "access.log").exists():
        raise SystemExit(f"no access.log in {args.log_dir} (bench/detect_hunt.py makes one)")
    try:
        site = base_site(args.base)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"cannot build the base {args.base!r}: {' '.join(exc.cmd[:3])}... failed")
    print(f"log: {args.log_dir / 'access.log'}; base: {site.name[:12]}; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        load_or_create_key_file(work / "token.key")
        diffs = []
        for r in range(1, args.rounds + 1):
            base, tree = same_time(site, args.log_dir, work)
            diffs.append((tree - base) / base * 100)
            same = (work / "base/alerts.jsonl").read_bytes() == (
                work / "tree/alerts.jsonl"
            ).read_bytes()
            print(
                f"  round {r}: base {base:.2f} CPU-s, tree {tree:.2f} CPU-s ({diffs[-1]:+.1f}%),"
                f" alerts {'identical' if same else 'DIFFERENT'}",
                flush=True,
            )
    print(f"tree against base, at the same time: {', '.join(f'{d:+.1f}%' for d in diffs)}")


if __name__ == "__main__":
    main()
