"""``run_hunt(workers=2)`` (decoding in a forked child, events over an Arrow IPC pipe) gives the
serial hunt's alerts, counts and quarantine files, byte for byte; child errors surface as the
serial path's one-line error."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rempart.detect import hunt_pipe
from rempart.detect.hunt import HuntResult, run_hunt
from rempart.detect.hunt_pipe import decode_events, encode_batch, encode_events
from rempart.detect.loader import load_pack
from rempart.detect.spec import RuleSpec
from rempart.events import Event
from rempart.ingest import read_events
from rempart.ingest.pipeline import iter_batches
from rempart.ingest.profile import load_profile
from rempart.ingest.service import IngestRequest
from rempart.protect.tokens import Tokenizer, generate_key

KEY = generate_key()


@pytest.fixture(scope="module")
def specs() -> list[RuleSpec]:
    return load_pack("tiers-payant")


def _request(paths: list[Path], quarantine_dir: Path | None = None) -> IngestRequest:
    return IngestRequest(
        paths=[str(p) for p in paths],
        profile=load_profile("tiers-payant"),
        tokenizer=Tokenizer(KEY),
        quarantine_dir=quarantine_dir,
    )


def _comparable(result: HuntResult) -> tuple[list[str], dict[str, Any]]:
    summary = result.summary()
    summary.pop("seconds")
    summary.pop("events_per_second")
    summary.pop("quarantine_file")  # (named after the run's time)
    alerts = [json.dumps(a.to_dict(), sort_keys=True, ensure_ascii=False) for a in result.alerts]
    return alerts, summary


def test_when_hunting_with_two_workers_then_alerts_and_summary_equal_the_serial_hunt(
    all_scenarios_log: Path, specs: list[RuleSpec]
) -> None:
    serial = run_hunt(_request([all_scenarios_log]), specs, lateness=60, workers=1)
    piped = run_hunt(_request([all_scenarios_log]), specs, lateness=60, workers=2)
    assert len(serial.alerts) >= 7  # the scenarios are detected, so the comparison means something
    assert len({a.rule_id for a in serial.alerts}) >= 5
    assert _comparable(piped) == _comparable(serial)


@pytest.mark.parametrize("enabled", [True, False])
def test_when_hunting_then_the_collector_is_off_during_the_replay_and_restored_after(
    all_scenarios_log: Path, specs: list[RuleSpec], enabled: bool
) -> None:
    seen: list[bool] = []
    (gc.enable if enabled else gc.disable)()
    try:
        result = run_hunt(
            _request([all_scenarios_log]),
            specs,
            on_batch=lambda _lines: seen.append(gc.isenabled()),
        )
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
    assert result.alerts
    assert seen and not any(seen)


def test_when_lines_are_malformed_then_both_paths_quarantine_the_same_lines_and_files(
    all_scenarios_log: Path, specs: list[RuleSpec], tmp_path: Path
) -> None:
    lines = all_scenarios_log.read_bytes().splitlines(keepends=True)[:20_000]
    bad = [b"garbage line\n", b'1.2.3.4 - - [bad date] "GET / HTTP/1.1" 200 1 "-" "x"\n']
    mixed = [
        ln for i, ln in enumerate(lines) for ln in ([ln, bad[i % 2]] if i % 997 == 0 else [ln])
    ]
    log = tmp_path / "mixed.log"
    log.write_bytes(b"".join(mixed))
    results = {}
    for workers in (1, 2):
        qdir = tmp_path / f"q{workers}"
        results[workers] = run_hunt(_request([log], qdir), specs, lateness=60, workers=workers)
        # File names carry the run's time: the contents must match.
        files = sorted(p.read_bytes() for p in qdir.rglob("*") if p.is_file())
        results[workers].files = files  # type: ignore[attr-defined]
    assert results[1].quarantined > 0
    assert results[2].quarantined == results[1].quarantined
    assert results[1].quarantined_by_reason == {"bad_format": 11, "bad_timestamp": 10}
    assert results[2].quarantined_by_reason == results[1].quarantined_by_reason
    for workers in (1, 2):  # the file each path names is the one it wrote
        named = results[workers].quarantine_file
        assert named and Path(named).parent == tmp_path / f"q{workers}"
        assert [Path(named).read_bytes()] == results[workers].files  # type: ignore[attr-defined]
    assert results[2].files == results[1].files  # type: ignore[attr-defined]
    assert results[1].files  # type: ignore[attr-defined]
    assert _comparable(results[2]) == _comparable(results[1])


def test_when_events_cross_the_pipe_then_every_attribute_comes_back_identical(
    all_scenarios_log: Path,
) -> None:
    events = list(read_events([all_scenarios_log], tokenizer=Tokenizer(KEY)))[:5000]
    events.append(Event(ts=1.25e9 + 0.1, source_ip="::1", action="x", outcome="unknown"))
    back = decode_events(encode_events(events))
    assert back == events
    assert [e.ts.hex() for e in back] == [e.ts.hex() for e in events]
    assert all(isinstance(e.categories, tuple) for e in back)


@pytest.mark.parametrize("keep", [None, frozenset({"auth.login", "beneficiary.read"})])
def test_when_chunks_are_sent_from_their_columns_then_the_parent_gets_the_serial_events(
    all_scenarios_log: Path, tmp_path: Path, keep: frozenset[str] | None
) -> None:
    lines = all_scenarios_log.read_bytes().splitlines(keepends=True)
    log = tmp_path / "two.log"  # a chunk decoded column-wise, then one with a malformed line
    log.write_bytes(b"".join(lines[:30_000]) + b"garbage\n" + b"".join(lines[30_000:40_000]))
    batches = list(
        iter_batches([log], tokenizer=Tokenizer(KEY), keep_actions=keep, chunk_size=1 << 20)
    )
    assert len(batches) >= 3
    columnar = 0
    for batch in batches:
        columnar += batch._chunk is not None and not batch._chunk.slow_events
        assert decode_events(encode_batch(batch)) == batch.events()
    assert columnar >= 2  # the column path was exercised


@pytest.mark.parametrize("workers", ["1", "2"])
def test_when_lines_are_bad_then_hunt_says_how_many_why_and_where_they_were_kept(
    config_file: Path, all_scenarios_log: Path, tmp_path: Path, workers: str
) -> None:
    log = tmp_path / "mixed.log"
    lines = all_scenarios_log.read_bytes().splitlines(keepends=True)[:3000]
    log.write_bytes(b"".join(lines) + b"garbage line\n\x00\x01binary\n" + b"".join(lines[:10]))
    rempart = Path(sys.executable).parent / "rempart"
    args = [str(log), "--workers", workers, "--config", str(config_file)]
    table = subprocess.run([rempart, "hunt", *args], capture_output=True, text=True, timeout=120)
    as_json = subprocess.run(
        [rempart, "hunt", *args, "--json"], capture_output=True, text=True, timeout=120
    )
    assert table.returncode == as_json.returncode == 0, table.stderr + as_json.stderr
    assert "bad_format" in table.stdout and "binary" in table.stdout  # the summary's rows
    for res in (table, as_json):
        text = res.stdout if res is table else res.stderr  # --json: stdout is the alerts
        (note,) = [ln for ln in text.splitlines() if "bad lines" in ln]
        assert note.startswith("2 bad lines (bad_format 1, binary 1) kept in ")
        kept = [json.loads(x) for x in Path(note.rsplit(" ", 1)[1]).read_text().splitlines()]
        assert [(r["source"], r["line"], r["reason"]) for r in kept] == [
            (str(log), 3001, "bad_format"),
            (str(log), 3002, "binary"),
        ]
    assert all(json.loads(ln)["rule"] for ln in as_json.stdout.splitlines())


def test_when_an_input_is_missing_then_hunt_with_workers_prints_one_line_and_exits_2(
    config_file: Path, all_scenarios_log: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.log"
    rempart = Path(sys.executable).parent / "rempart"
    args = [str(all_scenarios_log), str(missing), "--workers", "2", "--config", str(config_file)]
    res = subprocess.run([rempart, "hunt", *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr == f"rempart: error: {missing}: file not found\n"
    assert _children() == []  # no child (nor zombie) left behind


def test_when_the_child_is_killed_then_the_parent_reports_it_and_reaps_it(
    all_scenarios_log: Path, specs: list[RuleSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rempart.errors import RempartError

    def die(batch: Any) -> Any:  # runs in the forked child, on its first batch
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(hunt_pipe, "encode_batch", die)
    with pytest.raises(RempartError, match="decoding process was killed by signal 9"):
        run_hunt(_request([all_scenarios_log]), specs, workers=2)
    assert _children() == []


def _children() -> list[int]:
    me = os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            out.append(int(stat.parent.name))
    return out


def test_when_the_consumer_stops_early_then_child_and_reading_thread_are_gone(
    all_scenarios_log: Path, specs: list[RuleSpec]
) -> None:
    import threading

    from rempart.detect.hunt_pipe import DecodeTotals, piped_events

    before = threading.active_count()
    batches = piped_events(_request([all_scenarios_log]), None, DecodeTotals())
    first = next(batches)
    assert first  # events arrived through the read-ahead thread
    batches.close()  # the child is killed mid-stream, with the pipe full of unread batches
    assert _children() == []
    assert threading.active_count() == before


def test_with_a_care_history_two_workers_give_the_serial_hunt_and_its_note(
    tmp_path: Path, specs: list[RuleSpec]
) -> None:
    from dataclasses import replace

    from rempart.sim import SimOptions, simulate

    sim = simulate(SimOptions(seed=5, accounts=40, days=10), tmp_path, events=False, care=True)
    assert sim.care is not None
    alone = run_hunt(_request([sim.access_log]), specs, lateness=60, workers=1)
    results = {
        workers: run_hunt(
            replace(_request([sim.access_log]), care_history=[sim.care]),
            specs,
            lateness=60,
            workers=workers,
        )
        for workers in (1, 2)
    }
    assert _comparable(results[2]) == _comparable(results[1])
    assert results[1].care_note == results[2].care_note
    assert results[1].care_note is not None and "relationships of 40 accounts" in (
        results[1].care_note
    )
    assert _comparable(results[1])[0] != _comparable(alone)[0], "the history changes alerts"
