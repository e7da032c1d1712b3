"""The benchmark scripts import: ``make bench`` is not part of ``make test``, so a helper they
borrow from the tests (moved or renamed) would otherwise break them unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_the_benchmark_script_imports(script: str) -> None:
    # Run as ``make bench`` runs it (its own directory first on sys.path), main not called.
    code = (
        "import runpy, sys; sys.argv = [sys.argv[0]]; "
        f"runpy.run_path({str(BENCH / script)!r}, run_name='imported')"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=BENCH, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
