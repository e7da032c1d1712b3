"""The CLI and the hunt/watch library calls, end to end on a simulated portal log."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import load_config
from rempart.detect.engine import Engine
from rempart.detect.hunt import HuntResult, run_hunt, run_watch
from rempart.detect.loader import load_pack
from rempart.detect.spec import RuleSpec
from rempart.ingest import read_events
from rempart.ingest.service import IngestRequest
from rempart.sim import SimResult

runner = CliRunner()


def test_rules_lint_exits_1_and_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: X-BAD-001\nversion: 1\ntitle: t\ntype: match\nseverity: loud\n")
    result = runner.invoke(app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{bad}:5" in result.output.replace("\n", "")
    assert "unknown severity 'loud'" in result.output


def test_rules_test_passes_on_the_shipped_pack() -> None:
    result = runner.invoke(app, ["rules", "test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data and all(r["ok"] for r in data)


def test_hunt_writes_alerts_naming_the_harvested_account(
    harvest_log: SimResult, config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.jsonl"
    result = runner.invoke(
        app,
        [
            "hunt",
            str(harvest_log.access_log),
            "--directory",
            str(harvest_log.directory),
            "--out",
            str(out),
            "--config",
            str(config_file),
        ],
    )
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    victim = harvest_log.truth["attacks"][0]["accounts"][0]
    harv = [a for a in alerts if a["rule"] == "TP-HARV-001"]
    assert harv and harv[0]["entity"] == victim
    for key in (
        "rule",
        "severity",
        "entity",
        "accounts",
        "ips",
        "first_seen",
        "detected_at",
        "records_exposed",
        "explanation",
        "evidence",
    ):
        assert key in harv[0]
    assert harv[0]["records_exposed"] >= 1000
    assert harv[0]["evidence"][0]["source"].endswith("access.log")


def test_file_replay_equals_shuffled_streaming_on_real_ingestion(
    harvest_log: SimResult, config_file: Path
) -> None:
    cfg = load_config(config_file)
    request = IngestRequest.from_config(
        cfg, paths=[str(harvest_log.access_log)], directory=harvest_log.directory
    )
    pack = load_pack()
    replay = run_hunt(request, pack, lateness=60)
    events = list(
        read_events(
            [harvest_log.access_log],
            profile=request.profile,
            tokenizer=request.tokenizer,
            directory=request.directory,
        )
    )
    rng = random.Random(5)
    jittered = sorted(events, key=lambda e: e.ts + rng.uniform(0, 50))
    live = Engine(pack, lateness=60)
    for ev in jittered:
        live.process(ev)
    live.flush()
    assert live.late_events == 0
    assert sorted(a.id for a in replay.alerts) == sorted(live.alerts)
    assert {a.id: a.records_exposed for a in replay.alerts} == {
        i: a.records_exposed for i, a in live.alerts.items()
    }


def _watch_until_idle(
    request: IngestRequest, pack: list[RuleSpec], state_url: str, seen: list[str]
) -> HuntResult:
    """``run_watch`` until its input has been idle 0.3 s; new alerts' ids into ``seen``."""
    return run_watch(
        request,
        pack,
        state_url=state_url,
        lateness=0,
        on_alert=lambda a, created: seen.append(a.id) if created else None,
        poll_interval=0.01,
        idle_exit=0.3,
    )


def test_watch_resumes_after_restart_without_replaying_lines(
    harvest_log: SimResult, config_file: Path, tmp_path: Path
) -> None:
    log = tmp_path / "live.log"
    lines = harvest_log.access_log.read_text().splitlines(keepends=True)
    half = len(lines) // 2
    log.write_text("".join(lines[:half]))
    cfg = load_config(config_file)
    request = IngestRequest.from_config(cfg, paths=[str(log)], directory=harvest_log.directory)
    pack = load_pack()
    seen: list[str] = []
    first = _watch_until_idle(request, pack, cfg.state.url, seen)
    assert first.lines == half
    with log.open("a") as fh:
        fh.write("".join(lines[half:]))
    second = _watch_until_idle(request, pack, cfg.state.url, seen)
    assert second.lines == len(lines) - half
    whole = run_hunt(
        IngestRequest.from_config(
            cfg, paths=[str(harvest_log.access_log)], directory=harvest_log.directory
        ),
        pack,
    )
    assert sorted(seen) == sorted(a.id for a in whole.alerts)


def test_watch_says_how_many_lines_were_bad_why_and_where_they_were_kept(
    harvest_log: SimResult, config_file: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    log = tmp_path / "live.log"
    lines = harvest_log.access_log.read_text().splitlines(keepends=True)[:200]
    log.write_text("".join(lines[:100]) + "garbage line\n" + "".join(lines[100:]))
    rempart = Path(sys.executable).parent / "rempart"
    res = subprocess.run(
        [rempart, "watch", str(log), "--idle-exit", "0.5", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    (note,) = [ln for ln in res.stderr.splitlines() if "bad line" in ln]
    assert note.startswith("1 bad line (bad_format 1) kept in ")
    (kept,) = [json.loads(x) for x in Path(note.rsplit(" ", 1)[1]).read_text().splitlines()]
    assert kept["source"].startswith(f"{log}@")  # (followed files are named with their inode)
    assert (kept["line"], kept["reason"]) == (101, "bad_format")


def test_hunt_loads_the_care_history_says_so_and_refuses_a_bad_one_in_one_line(
    config_file: Path, tmp_path: Path
) -> None:
    sim = tmp_path / "sim"
    made = runner.invoke(
        app,
        ["sim", "--out", str(sim), "--seed", "3", "--accounts", "15", "--days", "2",
         "--no-attacks", "--no-events", "--care-history", "--json"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    care = sim / "care.csv"
    assert json.loads(made.output)["care"] == str(care)
    rows = care.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "account,beneficiary" and len(rows) > 15 * 50
    args = ["hunt", str(sim / "access.log"), "--directory", str(sim / "directory.csv")]
    args += ["--config", str(config_file), "--json"]
    result = runner.invoke(app, [*args, "--care-history", str(care)])
    assert result.exit_code == 0, result.output
    accounts = len({r.split(",")[0] for r in rows[1:]})
    assert f"relationships of {accounts} accounts from {len(rows) - 1:,} rows in 1 file" in (
        result.stderr.replace("\n", " ")
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("login,nir\n", encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "rempart", *args, "--care-history", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and not refused.stdout
    (said,) = refused.stderr.splitlines()
    assert said.startswith(f"rempart: error: {bad}:1: care history CSV needs the columns ")


def test_watch_with_a_care_history_and_a_restart_raises_what_hunt_raises(
    config_file: Path, tmp_path: Path
) -> None:
    """The insider of this run (ten strangers over two days) is seen only with the claims
    history: the followed log, cut by a restart, and the replay both find it."""
    from datetime import date

    from rempart.sim import ScenarioSpec, SimOptions, simulate

    opts = SimOptions(
        seed=5,
        accounts=40,
        days=10,
        start=date(2026, 12, 1),
        scenarios=(ScenarioSpec.parse("insider:start=2026-12-08T09:00:00,count=10,days=2"),),
    )
    sim = simulate(opts, tmp_path / "sim", events=False, care=True)
    assert sim.care is not None
    (insider,) = sim.truth["attacks"][0]["accounts"]
    cfg = load_config(config_file).model_copy(update={"care_history": [sim.care]})
    log = tmp_path / "live.log"
    lines = sim.access_log.read_text().splitlines(keepends=True)
    half = len(lines) * 3 // 4
    log.write_text("".join(lines[:half]))
    request = IngestRequest.from_config(cfg, paths=[str(log)], directory=sim.directory)
    pack = load_pack()
    seen: list[str] = []
    for _ in range(2):
        watched = _watch_until_idle(request, pack, cfg.state.url, seen)
        assert watched.care_note is not None and "of 40 accounts" in watched.care_note
        with log.open("a") as fh:
            fh.write("".join(lines[half:]))
            half = len(lines)
    whole = run_hunt(
        IngestRequest.from_config(cfg, paths=[str(sim.access_log)], directory=sim.directory),
        pack,
    )
    assert sorted(seen) == sorted(a.id for a in whole.alerts)
    assert any(a.rule_id == "TP-INS-004" and a.entity == insider for a in whole.alerts)
