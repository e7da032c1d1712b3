"""Follow mode: rotation (rename and copytruncate) and kill -9, no line lost or read twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from rempart.ingest.archive import part_files
from tests.ingest.conftest import line


def _write(path: Path, start: int, count: int) -> int:
    """Append ``count`` lines numbered by their ``bytes`` field, flushing each one."""
    with path.open("a") as fh:
        for i in range(start, start + count):
            fh.write(line(size=i, user=f"PH{i % 50:04d}") + "\n")
            fh.flush()
    return start + count


def _follower(log: Path, archive: Path, tmp: Path, idle: float = 30.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rempart",
            "ingest",
            str(log),
            "--follow",
            "--archive",
            str(archive),
            "--quarantine",
            str(tmp / "q"),
            "--idle-exit",
            str(idle),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _archived(archive: Path) -> list[int]:
    values: list[int] = []
    for f in part_files(archive):
        values += pq.read_table(f, columns=["bytes"]).column("bytes").to_pylist()
    return values


def _wait_for(archive: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(set(_archived(archive))) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"archive did not reach {n} lines: {len(set(_archived(archive)))}")


def test_follow_survives_rename_copytruncate_and_kill_9(tmp_path):
    log = tmp_path / "portal.log"
    archive = tmp_path / "archive"
    log.touch()
    proc = _follower(log, archive, tmp_path)
    try:
        n = _write(log, 0, 300)
        _wait_for(archive, 300)
        # logrotate "create": rename, then a new file; lines land in both around the rename.
        with log.open("a") as fh:
            fh.write(line(size=n) + "\n")
        n += 1
        log.rename(tmp_path / "portal.log.1")
        n = _write(tmp_path / "portal.log.1", n, 20)  # late writes to the old file
        n = _write(log, n, 200)
        _wait_for(archive, n)
        # crash hard while lines keep coming
        n = _write(log, n, 150)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        n = _write(log, n, 150)  # written while Rempart is down
        # logrotate "copytruncate" while down
        shutil.copyfile(log, tmp_path / "portal.log.2")
        with log.open("r+") as fh:
            fh.truncate(0)
        n = _write(log, n, 100)
        proc = _follower(log, archive, tmp_path, idle=3.0)
        n = _write(log, n, 100)
        _wait_for(archive, n)
        # copytruncate while running, then a final batch; an idle follower exits by itself
        shutil.copyfile(log, tmp_path / "portal.log.3")
        with log.open("r+") as fh:
            fh.truncate(0)
        n = _write(log, n, 50)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    values = _archived(archive)
    assert sorted(values) == list(range(n)), "every line exactly once"


def test_follow_resumes_from_the_checkpoint_without_rereading(tmp_path):
    log = tmp_path / "portal.log"
    archive = tmp_path / "archive"
    n = _write(log, 0, 100)
    proc = _follower(log, archive, tmp_path, idle=2.0)
    proc.communicate(timeout=60)
    n = _write(log, n, 50)
    proc = _follower(log, archive, tmp_path, idle=2.0)
    proc.communicate(timeout=60)
    assert sorted(_archived(archive)) == list(range(n))
    assert len(part_files(archive)) >= 2


def test_a_lost_checkpointed_file_is_warned_about_not_silently_reread(tmp_path, caplog):
    from rempart.ingest.profile import load_profile
    from rempart.ingest.service import FollowedSource, IngestRequest
    from rempart.protect.tokens import Tokenizer, TokenKey

    log = tmp_path / "portal.log"
    _write(log, 0, 5)
    gone = {
        "path": str(log),
        "dev": 1,
        "ino": 2,
        "fp": "0" * 64,
        "fp_len": 10,
        "offset": 99,
        "line": 3,
    }
    request = IngestRequest(
        paths=[str(log)],
        profile=load_profile("tiers-payant"),
        tokenizer=Tokenizer(TokenKey("t1", b"k" * 32)),
        quarantine_dir=tmp_path / "q",
    )
    source = FollowedSource(request, {"files": {str(log): gone}})
    with caplog.at_level("WARNING", logger="rempart.ingest"):
        events = source.poll()
    source.close()
    assert events is not None and len(events) == 5
    assert any("checkpointed file was not found" in r.getMessage() for r in caplog.records)
