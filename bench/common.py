"""Helpers shared by benchmark scripts: simulated inputs and whole-process measurements."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable


@dataclass
class Run:
    wall: float
    cpu: float
    max_rss_mib: float
    stdout: str


def measure_isolated(cmd: list[str], runs: int = 3, warmup: int = 1) -> list[Run]:
    """Each run in a fresh helper process so that CPU and peak RSS are per run."""
    results = []
    for i in range(warmup + runs):
        helper = subprocess.run(
            [PY, str(Path(__file__).resolve()), "--measure", json.dumps(cmd)],
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(helper.stdout.splitlines()[-1])
        if i >= warmup:
            results.append(Run(data["wall"], data["cpu"], data["rss"], data["stdout"]))
    return results


def hunt_command(
    log_dir: Path, work: Path, workers: int = 1, key: Path | None = None, care: bool = False
) -> list[str]:
    """``rempart hunt`` of ``log_dir``'s ``access.log`` (with its ``directory.csv``, and with
    ``care`` its ``care.csv``) writing ``work/alerts.jsonl``, with a configuration in ``work``
    (the token key ``key``, else ``work/token.key``)."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "rempart.yaml"
    cfg.write_text(
        f"keys:\n  token_key_file: {key or work / 'token.key'}\n"
        f"state:\n  quarantine_dir: {work}/quarantine\n"
    )
    return [
        str(Path(sys.executable).parent / "rempart"),
        "hunt",
        str(log_dir / "access.log"),
        "--directory",
        str(log_dir / "directory.csv"),
        "--out",
        str(work / "alerts.jsonl"),
        "--config",
        str(cfg),
        "--json",
        "--workers",
        str(workers),
        *(["--care-history", str(log_dir / "care.csv")] if care else []),
    ]


def median(values: list[float]) -> float:
    return statistics.median(values)


def simulator_fingerprint() -> str:
    """A digest of the simulator's sources (the ``rempart.sim`` package this interpreter
    imports): a log cached by another version of the simulator is not the same log."""
    import rempart.sim

    digest = hashlib.sha256()
    for path in sorted(Path(rempart.sim.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cached_simulation(out: Path, make: Callable[[], object], made_by: Sequence[str] = ()) -> Path:
    """``out``, made by ``make()`` unless it holds a simulation by this very simulator and the
    same ``made_by`` (the arguments that make it, when ``out``'s name does not say them all)."""
    stamp = out / "simulator.sha"
    fingerprint = "\n".join([simulator_fingerprint(), *made_by])
    if (out / "truth.json").exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return out
    if (out / "truth.json").exists():
        print(f"{out}: made by another simulator or arguments, simulating again", flush=True)
    make()
    stamp.write_text(fingerprint)
    return out


def simulated_log(accounts: int, days: int, seed: int = 7) -> Path:
    """A cached simulator output directory (``access.log``, ``truth.json``...)."""
    out = OUT / f"sim-a{accounts}-d{days}-s{seed}"
    return cached_simulation(
        out,
        lambda: subprocess.run(
            [
                PY,
                "-m",
                "rempart",
                "sim",
                "--seed",
                str(seed),
                "--accounts",
                str(accounts),
                "--days",
                str(days),
                "--out",
                str(out),
                "--no-events",
                "--json",
            ],
            check=True,
            capture_output=True,
        ),
    )


def machine() -> str:
    """Cores, CPU and Python: the CPU's family and model too, since a cloud machine's "model
    name" may say only "AMD EPYC" for generations a third apart in speed."""
    cpu = "unknown CPU"
    fields: dict[str, str] = {}
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = ln.partition(":")
            if not name.strip():
                break  # the first processor's block only
            fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    if "model name" in fields:
        cpu = fields["model name"]
        if "cpu family" in fields and "model" in fields:
            cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--measure":
    import resource

    cmd = json.loads(sys.argv[2])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(p.returncode)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": ru.ru_utime + ru.ru_stime,
                "rss": ru.ru_maxrss / 1024,
                "stdout": p.stdout,
            }
        )
    )
