"""Running a simulation: files (``simulate``) or a stream (``iter_requests``, ``iter_lines``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rempart.errors import InputError
from rempart.gcpause import paused
from rempart.sim.directory import directory_csv, write_care_csv
from rempart.sim.engine import Simulation
from rempart.sim.options import SimOptions
from rempart.sim.render import Renderer, SimRequest

CHUNK = 50_000
#: progress(lines written so far, days done, days in total)
Progress = Callable[[int, int, int], None]


@dataclass(slots=True)
class SimResult:
    out_dir: Path
    access_log: Path
    events: Path | None
    directory: Path
    truth_path: Path
    truth: dict[str, Any] = field(repr=False)
    lines: int = 0
    seconds: float = 0.0
    #: ``care.csv``: the claims history before the period (``simulate(care=True)``).
    care: Path | None = None

    def summary(self) -> dict[str, Any]:
        """Short JSON-friendly summary (the CLI's ``--json``)."""
        totals = self.truth["totals"]
        return {
            "out_dir": str(self.out_dir),
            "care": str(self.care) if self.care else None,
            "lines": self.lines,
            "seconds": round(self.seconds, 2),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "start": self.truth["start"],
            "end": self.truth["end"],
            "totals": totals,
            "attacks": [
                {
                    "id": a["id"],
                    "accounts": len(a["accounts"]),
                    "ips": len(a["ips"]),
                    "lines": a["lines"],
                    "exposed": len(a["exposed"]),
                    "start": a["start"],
                    "end": a["end"],
                }
                for a in self.truth["attacks"]
            ],
        }


def simulate(
    opts: SimOptions,
    out_dir: Path,
    *,
    events: bool = True,
    progress: Progress | None = None,
    care: bool = False,
) -> SimResult:
    """Write ``access.log``, ``events.jsonl`` (unless ``events=False``), ``directory.csv`` and
    ``truth.json`` to ``out_dir``, and with ``care`` the operator's claims history before the
    period, ``care.csv`` (``account,beneficiary``). Same options, byte-identical files."""
    began = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create output directory: {exc.strerror}", where=str(out_dir)
        ) from None
    sim = Simulation(opts)
    log_path = out_dir / "access.log"
    ecs_path = out_dir / "events.jsonl"
    dir_path = out_dir / "directory.csv"
    truth_path = out_dir / "truth.json"
    dir_path.write_text(directory_csv(sim.accounts), encoding="utf-8")
    care_path = out_dir / "care.csv"
    if care:
        write_care_csv(care_path, sim.accounts, sim.population, opts.seed)
    else:
        care_path.unlink(missing_ok=True)  # never leave a stale twin of another run
    if not events:
        ecs_path.unlink(missing_ok=True)  # never leave a stale twin of another run
    renderer = Renderer()
    lines = 0
    with ExitStack() as stack:
        # Millions of long-lived tuples and no reference cycles: the cyclic GC only costs time.
        stack.enter_context(paused())
        log = stack.enter_context(
            open(log_path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)
        )
        jsonl = (
            stack.enter_context(
                open(ecs_path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)
            )
            if events
            else None
        )
        for day_no, batch in enumerate(sim.batches(), start=1):
            for k in range(0, len(batch), CHUNK):
                chunk = batch[k : k + CHUNK]
                if jsonl is not None:
                    text, ecs_text = renderer.both(chunk)
                    log.write(text)
                    jsonl.write(ecs_text)
                else:
                    log.write(renderer.nginx(chunk))
            lines += len(batch)
            batch = chunk = []  # free this day before the next one is generated
            if progress is not None:
                progress(lines, day_no, opts.days)
    truth = sim.truth()
    truth_path.write_text(json.dumps(truth, ensure_ascii=False) + "\n", encoding="utf-8")
    return SimResult(
        out_dir=out_dir,
        access_log=log_path,
        events=ecs_path if events else None,
        directory=dir_path,
        truth_path=truth_path,
        truth=truth,
        lines=lines,
        seconds=time.perf_counter() - began,
        care=care_path if care else None,
    )


def iter_requests(opts: SimOptions) -> Iterator[SimRequest]:
    """Every simulated request in time order (for feeding a live server)."""
    make = SimRequest._make
    for batch in Simulation(opts).batches():
        yield from map(make, batch)


def iter_lines(opts: SimOptions, fmt: Literal["nginx", "ecs"] = "nginx") -> Iterator[str]:
    """Log lines (without the trailing newline) in time order, as ``simulate`` writes them."""
    renderer = Renderer()
    render = renderer.nginx if fmt == "nginx" else renderer.ecs
    for batch in Simulation(opts).batches():
        for k in range(0, len(batch), 1000):
            yield from render(batch[k : k + 1000]).splitlines()
