"""The benchmark scripts import: ``make bench`` is not part of ``make test``, so a helper they
borrow from the tests (moved or renamed) would otherwise break them unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


SCRIPTS = [*sorted(p.name for p in BENCH.glob("*.py")), "peers/run.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_script_imports(script: str) -> None:
    # Run as ``make bench`` runs it (its own directory first on sys.path), main not called.
    path = BENCH / script
    code = (
        "import runpy, sys; sys.argv = [sys.argv[0]]; "
        f"runpy.run_path({str(path)!r}, run_name='imported')"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=path.parent, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr


def test_a_cached_simulation_is_made_again_by_another_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import common

    made: list[int] = []

    def make() -> None:
        made.append(1)
        (tmp_path / "truth.json").write_text("{}")

    assert common.cached_simulation(tmp_path, make) == tmp_path
    assert common.cached_simulation(tmp_path, make) == tmp_path
    assert len(made) == 1  # cached
    monkeypatch.setattr(common, "simulator_fingerprint", lambda: "another")
    common.cached_simulation(tmp_path, make)
    assert len(made) == 2  # stale: made again
    (tmp_path / "simulator.sha").unlink()  # a cache from before the stamps
    common.cached_simulation(tmp_path, make)
    assert len(made) == 3


def test_the_simulator_fingerprint_follows_its_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import common

    import rempart.sim

    first = common.simulator_fingerprint()
    assert first == common.simulator_fingerprint()
    fake = tmp_path / "sim"
    fake.mkdir()
    for src in Path(rempart.sim.__file__).parent.glob("*.py"):
        (fake / src.name).write_bytes(src.read_bytes())
    monkeypatch.setattr(rempart.sim, "__file__", str(fake / "__init__.py"))
    assert common.simulator_fingerprint() == first
    (fake / "legit.py").write_text((fake / "legit.py").read_text() + "\n# changed\n")
    assert common.simulator_fingerprint() != first


def test_the_hunt_benchmark_simulates_its_log_in_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hunt is forked from the benchmark's process, and a child's peak RSS counts the
    memory it was forked with: simulating in that process made the first `make bench` on a
    machine report 991 MiB for a 324 MiB hunt."""
    monkeypatch.syspath_prepend(str(BENCH))
    import detect_hunt

    import rempart.sim

    def in_this_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated in the benchmark's own process")

    monkeypatch.setattr(rempart.sim, "simulate", in_this_process)
    log = detect_hunt.ensure_log(3000, tmp_path, days=1)
    assert (log / "truth.json").exists() and (log / "simulator.sha").exists()
    assert sum(1 for _ in (log / "access.log").open()) > 1000


def test_the_insider_oracle_finds_seed_1s_insider_and_not_seed_10s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/care-history.md's bound: with the care relationships, the true rates and the
    insider's own rate and length, seed 1's pharmacy insider (16 strangers) outranks every
    legitimate account; seed 10's hospital insider (5 strangers over six days, among a
    hospital's dozens) stays below tens of them, beyond the false-positive target."""
    monkeypatch.syspath_prepend(str(BENCH))
    import insider_oracle

    found = insider_oracle.run_seed(1, accounts=200, days=7, learn_days=7)
    missed = insider_oracle.run_seed(10, accounts=200, days=7, learn_days=7)
    assert found["counts"] == {"log_lr": 36.34, "legit_at_least_as_high": 0, "findable": True}
    assert missed["kind"] == "HP" and missed["records"] == 5
    for name in ("counts", "areas"):
        assert missed[name]["legit_at_least_as_high"] > 2.8 and not missed[name]["findable"]
