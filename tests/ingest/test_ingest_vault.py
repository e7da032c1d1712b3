"""Ingestion seals each beneficiary id for the DPO; nothing in clear, only the DPO key reveals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rempart.cases.vault import generate_dpo_keys, load_private_key, reveal
from rempart.config import load_config
from rempart.db import open_database
from rempart.ingest.service import IngestRequest, run_ingest
from rempart.protect.tokens import Tokenizer, TokenKey
from tests.ingest.conftest import NIR_A, NIR_B, line


def test_ingestion_with_a_dpo_key_fills_the_vault_and_only_the_dpo_reveals(tmp_path: Path):
    generate_dpo_keys(tmp_path / "dpo.pem", tmp_path / "dpo.pub.pem", b"correct horse")
    db = tmp_path / "state.db"
    cfg_file = tmp_path / "r.yaml"
    cfg_file.write_text(
        f"state:\n  url: sqlite:///{db}\n  quarantine_dir: {tmp_path / 'q'}\n"
        f"cases:\n  dpo_public_key: {tmp_path / 'dpo.pub.pem'}\n"
    )
    log = tmp_path / "access.log"
    log.write_text(
        line()
        + "\n"
        + line(request=f"GET /api/v1/beneficiaires/{NIR_B}/droits HTTP/1.1")
        + "\n"
        + line()
        + "\n"
    )
    request = IngestRequest.from_config(load_config(cfg_file), paths=[str(log)])
    assert request.vault is not None
    run_ingest(request)
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("state.db-*"))
    assert NIR_A.encode() not in raw and NIR_B.encode() not in raw
    tok = Tokenizer(TokenKey("t1", b"k" * 32))
    _engine, sessions = open_database(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from cases_vault").fetchone()[0] == 2
    found, missing = reveal(
        sessions,
        load_private_key(tmp_path / "dpo.pem", b"correct horse"),
        [tok(NIR_A), tok(NIR_B), "k9.x"],
    )
    assert found == {tok(NIR_A): NIR_A, tok(NIR_B): NIR_B} and missing == ["k9.x"]
