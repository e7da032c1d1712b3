"""The scanner on a generated corpus (CSV, TSV, JSONL, gzip log, Parquet, SQLite)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from protect_corpus import (
    expected_keys,
    found_keys,
    make_nir,
    precision_recall,
    write_corpus,
)

from rempart.protect.detector import detect
from rempart.protect.scanner import AllowList, scan, scan_bytes, scan_stream

RUN = [str(Path(sys.executable).parent / "rempart")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    truth = write_corpus(root, seed=11, lines=800)
    return root, truth


def _scan_corpus(root: Path, **kw):
    files = [p for p in root.iterdir() if p.suffix != ".sqlite"]
    return scan(files, db_urls=[f"sqlite:///{root / 'patients.sqlite'}"], max_findings=10**6, **kw)


def test_scanner_finds_every_planted_identifier_and_nothing_else(corpus):
    root, truth = corpus
    report = _scan_corpus(root)
    expected = expected_keys(truth)
    found = found_keys(report.findings, root)
    precision, recall, missed, extra = precision_recall(expected, found)
    print(
        f"\ncorpus: {len(expected)} planted, {truth.decoys} look-alikes; "
        f"precision {precision:.4f}, recall {recall:.4f}"
    )
    assert not missed, sorted(missed)[:10]
    assert precision >= 0.99, sorted(extra)[:10]


def test_look_alikes_with_wrong_checksums_are_not_reported(corpus):
    root, _ = corpus
    report = scan([root / "dump.log.gz"])
    lines_with_valid = {f.line for f in report.findings if f.kind == "nir"}
    text = __import__("gzip").open(root / "dump.log.gz", "rt").read().splitlines()
    from rempart.protect.identifiers import is_valid_nir

    for n, line in enumerate(text, start=1):
        value = line.split("nir=")[1].split()[0]
        assert (n in lines_with_valid) == is_valid_nir(value)


def test_database_columns_report_table_column_and_row_count(corpus):
    root, _ = corpus
    report = scan(db_urls=[f"sqlite:///{root / 'patients.sqlite'}"])
    by_field = {(f.field, f.kind): f for f in report.findings}
    assert by_field[("assures.email", "email")].rows == 200
    assert by_field[("assures.date_naissance", "dob")].rows == 200
    assert 0 < by_field[("assures.nir", "nir")].rows < 200  # invalid keys mixed in
    assert all("@" not in f.sample[1:-2] for f in report.findings)


def test_findings_hold_masked_samples_only(corpus):
    root, _ = corpus
    report = scan([root / "patients.csv"])
    raw = (root / "patients.csv").read_text()
    for f in report.findings:
        assert "*" in f.sample
        assert f.sample not in raw


def test_context_words_raise_and_lower_confidence():
    nir = make_nir(__import__("random").Random(1))
    assert nir[0] in "12"
    with_ctx = list(detect(f"n° sécu {nir}\n".encode()))
    neutral = list(detect(f"x {nir}\n".encode()))
    negative = list(detect(f"commande {nir}\n".encode()))
    assert with_ctx[0].confidence > neutral[0].confidence > negative[0].confidence


def test_siren_alone_is_low_confidence_but_with_its_word_is_reported():
    assert scan_bytes(b"valeur 404833048\n") == []
    found = scan_bytes(b"SIREN 404833048\n")
    assert [f.kind for f in found] == ["siren"]


def test_csv_column_names_are_hints_and_locations():
    data = b"id,date_naissance,date_soin\n1,12/03/1985,14/05/2024\n"
    found = scan_bytes(data, kind="csv")
    assert [(f.kind, f.field, f.line, f.column) for f in found] == [("dob", "date_naissance", 2, 3)]


def test_json_keys_are_locations():
    nir = make_nir(__import__("random").Random(2))
    found = scan_bytes(json.dumps({"user": "x", "numero": nir}).encode() + b"\n", kind="json")
    assert [(f.kind, f.field) for f in found] == [("nir", "numero")]


def test_identifiers_cut_by_chunk_boundaries_are_still_found():
    nir = make_nir(__import__("random").Random(3))
    lines = [f"ligne {i} nir {nir}\n".encode() for i in range(500)]
    data = b"".join(lines)
    found = [f for f, _ in scan_stream(io.BytesIO(data), "mem", chunk_size=97) if f.kind]
    assert [f.line for f in found] == list(range(1, 501))


def test_allow_list_marks_accepted_locations(corpus, tmp_path):
    root, _ = corpus
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# accepted\n{root}/patients.csv:email email\n")
    report = scan([root / "patients.csv"], allow=AllowList.load(allow))
    emails = [f for f in report.findings if f.kind == "email"]
    assert emails and all(f.allowed for f in emails)
    assert not any(f.allowed for f in report.findings if f.kind != "email")


def test_cli_exit_code_and_sarif(corpus, tmp_path):
    root, _ = corpus
    out = subprocess.run(
        [
            *RUN,
            "protect",
            "scan",
            str(root / "access.log"),
            "--format",
            "sarif",
            "--fail-above",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stderr
    sarif = json.loads(out.stdout)
    results = sarif["runs"][0]["results"]
    assert results and all(r["ruleId"] == "nir" for r in results)
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    clean = tmp_path / "clean.log"
    clean.write_text("GET /index.html 200\n" * 10)
    ok = subprocess.run(
        [*RUN, "protect", "scan", str(clean), "--fail-above", "0"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr


def test_cli_missing_file_is_one_line_error(tmp_path):
    out = subprocess.run(
        [*RUN, "protect", "scan", str(tmp_path / "nope.log")], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no such file" in out.stderr
