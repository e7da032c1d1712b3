from __future__ import annotations

from io import StringIO

from rich.console import Console

from rempart.respond.demo import run_live_demo


def test_live_demo_detects_and_stops_the_harvest() -> None:
    out = StringIO()
    result = run_live_demo(duration=40, harvest_after=1.0, console=Console(file=out, width=100))
    assert result.blocked and result.decision_id and result.decision_id.startswith("d-")
    assert 40 <= result.records_obtained < 200
    assert "Stopped" in out.getvalue() and "another pharmacy on the same network" in out.getvalue()
