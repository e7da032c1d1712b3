"""Bad input is counted by reason, kept aside with its origin, and never stops the run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import zstandard

from rempart.ingest import IngestStats, Quarantine, read_events
from tests.ingest.conftest import NIR_A, line


def _run(tmp_path: Path, data: bytes, tokenizer, fmt: str = "auto"):
    p = tmp_path / "access.log"
    p.write_bytes(data)
    q = Quarantine(tmp_path / "q")
    stats = IngestStats()
    events = list(read_events([p], tokenizer=tokenizer, quarantine=q, stats=stats, fmt=fmt))
    q.close()
    records = [json.loads(x) for x in q.path.read_text().splitlines()] if q.path else []
    return events, stats, records


def test_each_kind_of_bad_line_is_quarantined_with_its_reason_and_line(tmp_path, tokenizer):
    good = line().encode()
    bad = [
        good,  # 1 ok
        good[:57],  # 2 truncated mid-line
        b"\xff\xfe\xfa not utf-8",  # 3 encoding
        b"\x00\x01\x02\x03 binary junk \x00",  # 4 binary
        line(time="31/Feb/2026:09:03:22 +0100").encode(),  # 5 impossible date
        line(time="29/Nov/2026:25:03:22 +0100").encode(),  # 6 impossible hour
        b"A" * (1 << 20),  # 7 a 1 MB line
        b"hello world",  # 8 not the format
        good,  # 9 ok
    ]
    events, stats, records = _run(tmp_path, b"\n".join(bad) + b"\n", tokenizer)
    assert [e.line for e in events] == [1, 9]
    got = {(r["line"], r["reason"]) for r in records}
    assert got == {
        (2, "truncated"),
        (3, "encoding"),
        (4, "binary"),
        (5, "bad_timestamp"),
        (6, "bad_timestamp"),
        (7, "too_long"),
        (8, "bad_format"),
    }
    assert stats.lines == 9 and stats.events == 2 and sum(stats.quarantined.values()) == 7
    long = next(r for r in records if r["reason"] == "too_long")
    assert long["length"] == 1 << 20 and long["content_cut"] is True
    assert all(r["source"] == str(tmp_path / "access.log") for r in records)


def test_json_lines_that_are_not_objects_or_not_json(tmp_path, tokenizer):
    ok = json.dumps(
        {
            "@timestamp": "2026-11-29T09:00:00+01:00",
            "source.ip": "192.0.2.1",
            "url.path": "/api/v1/me",
            "http.response.status_code": 200,
        }
    )
    data = "\n".join(
        [
            ok,
            "[1, 2, 3]",
            '"just a string"',
            '{"@timestamp": "2026-11-29T09:00:00+01:00", "source.ip": "192.0.2.1"',
            "{not json}",
            json.dumps(
                {"source.ip": "192.0.2.1", "url.path": "/", "http.response.status_code": 200}
            ),
            json.dumps(
                {
                    "@timestamp": "2026-02-30T09:00:00+01:00",
                    "source.ip": "1",
                    "url.path": "/",
                    "http.response.status_code": 200,
                }
            ),
            json.dumps(
                {
                    "@timestamp": "2026-11-29T09:00:00+01:00",
                    "source.ip": "1",
                    "url.path": "/",
                    "http.response.status_code": "two hundred",
                }
            ),
        ]
    )
    events, _, records = _run(tmp_path, data.encode() + b"\n", tokenizer, fmt="jsonl")
    assert len(events) == 1
    assert [(r["line"], r["reason"]) for r in records] == [
        (2, "json_not_object"),
        (3, "json_not_object"),
        (4, "truncated"),
        (5, "json_invalid"),
        (6, "missing_field"),
        (7, "bad_timestamp"),
        (8, "bad_field"),
    ]


def test_last_line_cut_off_without_newline_is_truncated_not_lost(tmp_path, tokenizer):
    data = (line() + "\n" + line()[:80]).encode()
    events, stats, records = _run(tmp_path, data, tokenizer)
    assert len(events) == 1 and stats.lines == 2
    assert [(r["line"], r["reason"]) for r in records] == [(2, "truncated")]


def test_quarantine_holds_no_raw_nir(tmp_path, tokenizer):
    bad = line(time="31/Feb/2026:09:03:22 +0100").encode() + b"\n"
    bad += f"garbage {NIR_A} and 1 85 05 78 006 084 36\n".encode()
    _, _, records = _run(tmp_path, bad, tokenizer)
    text = json.dumps(records)
    assert len(records) == 2
    assert NIR_A not in text and "1 85 05 78 006 084 36" not in text
    assert tokenizer(NIR_A) in text


def test_gzip_and_zstd_inputs_are_read(tmp_path, tokenizer):
    text = (line() + "\n" + line(status=404) + "\n").encode()
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(text))
    zst = tmp_path / "b.log.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(text))
    events = list(read_events([gz, zst], tokenizer=tokenizer))
    assert [(e.source.rsplit("/", 1)[-1], e.line) for e in events] == [
        ("a.log.gz", 1),
        ("a.log.gz", 2),
        ("b.log.zst", 1),
        ("b.log.zst", 2),
    ]


def test_corrupt_gzip_is_one_clear_error_line(tmp_path):
    bad = tmp_path / "broken.log.gz"
    bad.write_bytes(gzip.compress((line() + "\n").encode() * 500 + bytes(range(256)) * 400)[:900])
    proc = subprocess.run(
        [sys.executable, "-m", "rempart", "ingest", str(bad), "--quarantine", str(tmp_path / "q")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "broken.log.gz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_ingest_archives_to_parquet_and_reads_stdin(tmp_path):
    text = line() + "\n" + line(request="POST /auth/login HTTP/1.1", status=401) + "\nnonsense\n"
    archive = tmp_path / "arch"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rempart",
            "ingest",
            "-",
            "--archive",
            str(archive),
            "--quarantine",
            str(tmp_path / "q"),
            "--json",
        ],
        input=text,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["lines"] == 3 and summary["events"] == 2 and summary["quarantined"] == 1
    assert summary["actions"] == {"auth.login": 1, "beneficiary.read": 1}
    files = list(archive.glob("day=2026-11-29/part-*.parquet"))
    table = pq.read_table(files[0])
    assert table.num_rows == 2
    dump = json.dumps(table.to_pylist(), default=str)
    assert NIR_A not in dump
