"""Output files: log format, ECS twin, determinism, truth totals recounted from the log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from rempart.sim import SimOptions, iter_lines, iter_requests, simulate

PROFILE = Path(__file__).parents[2] / "src/rempart/ingest/profiles/tiers-payant.yaml"
FILES = ("access.log", "events.jsonl", "directory.csv", "truth.json")


def _routes() -> list[tuple[str, re.Pattern[str], str, list[int]]]:
    profile = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))
    out = []
    for r in profile["routes"]:
        path = r["path"]
        pattern = re.compile(path if path.startswith("^") else "^" + re.escape(path) + "$")
        out.append((r["method"], pattern, r["action"], r.get("failure", [])))
    return out


def _action(routes: list[Any], method: str, path: str) -> str:
    for m, pattern, action, _ in routes:
        if m == method and pattern.match(path):
            return str(action)
    return "other"


def test_same_options_give_byte_identical_files(tmp_path: Path) -> None:
    opts = SimOptions(seed=11, accounts=25, days=2)
    simulate(opts, tmp_path / "a")
    simulate(opts, tmp_path / "b")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    simulate(SimOptions(seed=12, accounts=25, days=2), tmp_path / "c")
    assert (tmp_path / "a/access.log").read_bytes() != (tmp_path / "c/access.log").read_bytes()


def test_the_claims_history_is_deterministic_and_leaves_the_traffic_as_it_was(
    tmp_path: Path,
) -> None:
    from rempart.sim.engine import Simulation

    opts = SimOptions(seed=11, accounts=25, days=2)
    plain = simulate(opts, tmp_path / "a", events=False)
    a = simulate(opts, tmp_path / "b", events=False, care=True)
    b = simulate(opts, tmp_path / "c", events=False, care=True)
    assert plain.care is None and not (tmp_path / "a/care.csv").exists()
    assert a.care is not None and b.care is not None
    assert a.care.read_bytes() == b.care.read_bytes()
    for name in ("access.log", "directory.csv", "truth.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # Rows are regulars the account billed before: its panel as the period starts.
    sim = Simulation(opts)
    panels = {acc.name: {sim.population.nirs[i] for i in acc.panel} for acc in sim.accounts}
    rows = [r.split(",") for r in a.care.read_text(encoding="utf-8").splitlines()[1:]]
    assert all(nir in panels[acc] for acc, nir in rows)
    on_record = len(rows) / sum(len(p) for p in panels.values())
    assert 0.95 < on_record < 1.0, "most regulars were billed before, not all"
    # Asking again without it removes a care.csv left by an earlier run in the same directory.
    simulate(opts, tmp_path / "b", events=False)
    assert not (tmp_path / "b/care.csv").exists()


def test_output_does_not_depend_on_string_hash_randomisation(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from rempart.sim import SimOptions, simulate; "
        "simulate(SimOptions(seed=5, accounts=12, days=1), Path(sys.argv[1]))"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], check=True, env=env)
    for name in FILES:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_every_line_matches_the_log_format_and_is_in_time_order(small_run: Any) -> None:
    assert len(small_run.lines) == small_run.truth["totals"]["lines"] > 10_000
    times = [ln.time for ln in small_run.lines]
    assert times == sorted(times)
    assert {ln.time.utcoffset().total_seconds() for ln in small_run.lines} == {3600.0}


def test_every_request_matches_a_profile_route(small_run: Any) -> None:
    routes = _routes()
    others = [ln for ln in small_run.lines if _action(routes, ln.method, ln.path) == "other"]
    assert others == []


def test_truth_totals_match_counting_the_log(small_run: Any) -> None:
    routes = _routes()
    actions: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    read_ok: set[str] = set()
    for ln in small_run.lines:
        action = _action(routes, ln.method, ln.path)
        actions[action] += 1
        outcomes["success" if ln.status < 400 else "failure"] += 1
        if action == "beneficiary.read" and ln.status == 200:
            read_ok.add(ln.path.split("/")[4])
    totals = small_run.truth["totals"]
    assert totals["actions"] == dict(actions)
    assert totals["outcomes"] == dict(outcomes)
    assert totals["beneficiaries_read"] == len(read_ok)
    users = {ln.user for ln in small_run.lines} - {"-"}
    assert totals["accounts"] == len(users)
    assert totals["directory_accounts"] == len(small_run.directory) == 60


def test_events_jsonl_is_the_same_traffic_as_ecs(small_run: Any) -> None:
    with open(small_run.out / "events.jsonl", encoding="utf-8") as fh:
        events = [json.loads(line) for line in fh]
    assert len(events) == len(small_run.lines)
    for ev, ln in zip(events, small_run.lines, strict=True):
        ts = datetime.fromisoformat(ev["@timestamp"])
        assert ts.replace(microsecond=0) == ln.time
        assert ev["source.ip"] == ln.ip
        assert ev.get("user.name", "-") == ln.user
        assert ev["user_agent.original"] == ln.ua
        assert ev["http.request.method"] == ln.method
        assert ev["url.path"] == ln.path
        assert ev.get("url.query", "") == ln.query
        assert ev["http.response.status_code"] == ln.status
        assert ev["http.response.body.bytes"] == ln.bytes
        assert ev.get("session.id", "-") == ln.sid
        if ln.user in small_run.directory:
            assert ev["organization.id"] == small_run.directory[ln.user][1]


def test_streaming_api_yields_the_file_lines_in_order(small_run: Any) -> None:
    text = (small_run.out / "access.log").read_text(encoding="utf-8").splitlines()
    assert list(iter_lines(small_run.opts)) == text
    ecs = (small_run.out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert list(iter_lines(small_run.opts, "ecs")) == ecs
    reqs = iter_requests(small_run.opts)
    first = [next(reqs) for _ in range(50)]
    assert [r.ts_ms for r in first] == sorted(r.ts_ms for r in first)
    assert first[0].timestamp.strftime("%d/%b/%Y:%H:%M:%S %z") in text[0]


def test_daylight_saving_change_is_rendered_with_both_offsets(tmp_path: Path, run_sim: Any) -> None:
    run = run_sim(
        SimOptions(seed=2, accounts=20, days=2, start=date(2026, 10, 24), attacks=False),
        tmp_path,
    )
    offsets = [ln.time.utcoffset().total_seconds() for ln in run.lines]
    assert offsets[0] == 7200 and offsets[-1] == 3600
    utc = [ln.time.timestamp() for ln in run.lines]
    assert utc == sorted(utc)


def test_ingestion_reads_every_line_and_agrees_with_truth(small_run: Any) -> None:
    from rempart.ingest import IngestStats, iter_batches

    for name in ("access.log", "events.jsonl"):
        stats = IngestStats()
        for _ in iter_batches([small_run.out / name], stats=stats):
            pass
        got = stats.to_dict()
        totals = small_run.truth["totals"]
        assert got["lines"] == got["events"] == totals["lines"], name
        assert got["quarantined"] == 0
        assert got["actions"] == totals["actions"], name
        assert got["outcomes"] == totals["outcomes"], name
        assert got["accounts"] == totals["accounts"], name
        assert got["beneficiaries_read"] == totals["beneficiaries_read"], name
