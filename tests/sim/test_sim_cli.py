"""``rempart sim`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rempart.cli import app
from rempart.errors import RempartError

runner = CliRunner()


def test_sim_writes_the_four_files_and_prints_a_json_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["sim", "--out", str(out), "--seed", "3", "--accounts", "20", "--days", "2", "--json",
         "--scenario", "brute_force:attempts=40", "-s", "insider:count=3",
         "--forgotten-share", "0.2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["lines"] == len((out / "access.log").read_text().splitlines())
    assert [a["id"] for a in summary["attacks"]] == ["brute_force-1", "insider-1"]
    for name in ("access.log", "events.jsonl", "directory.csv", "truth.json"):
        assert (out / name).stat().st_size > 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["options"]["accounts"] == 20
    assert truth["options"]["forgotten_share"] == 0.2


def test_sim_human_output_and_no_events(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["sim", "-o", str(out), "--accounts", "15", "--days", "1", "--no-events",
              "--no-attacks"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lines" in result.output and "no attacks injected" in result.output
    assert not (out / "events.jsonl").exists()


def test_list_scenarios_shows_every_scenario() -> None:
    result = runner.invoke(app, ["sim", "--list-scenarios", "--json"])
    assert result.exit_code == 0
    assert set(json.loads(result.output)) == {
        "brute_force", "password_spraying", "stuffing_single_ip", "stuffing_distributed",
        "mass_harvest", "slow_harvest", "insider",
    }  # fmt: skip


def test_bad_options_raise_one_line_rempart_errors(tmp_path: Path) -> None:
    for args, text in (
        (["sim", "--out", str(tmp_path), "-s", "nope"], "unknown scenario"),
        (["sim", "--out", str(tmp_path), "--accounts", "3"], "at least 10 accounts"),
        (["sim", "--out", str(tmp_path), "--start", "monday"], "not a date"),
        (["sim"], "output directory is required"),
        (["sim", "--out", str(tmp_path), "--forgotten-share", "1.5"], "between 0 and 1"),
    ):
        result = runner.invoke(app, args)
        assert isinstance(result.exception, RempartError), args
        assert text in str(result.exception)
        assert "\n" not in str(result.exception)
