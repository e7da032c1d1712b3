"""Re-identification: only with the DPO key, always audited; no raw NIR at rest."""

from __future__ import annotations

import csv

import pytest
from test_cases_affected import harvest_alert, harvest_log

from rempart.cases.vault import Vault, generate_dpo_keys, reveal
from rempart.errors import KeyMaterialError


def fake_nir(token: str) -> str:
    digits = "".join(str(ord(c) % 10) for c in token)[-6:].rjust(6, "0")
    return f"1850575{digits}42"


@pytest.fixture()
def sealed(cases_factory, tmp_path):
    log, exposed, _ = harvest_log()
    priv, pub = tmp_path / "dpo.key", tmp_path / "dpo.pub"
    generate_dpo_keys(priv, pub, b"correct horse")
    cases = cases_factory(log.events, dpo_public_key=pub)
    tokens = {e.beneficiary_token for e in log.events if e.beneficiary_token}
    with cases.vault() as vault:  # what ingestion does, once per distinct token
        for t in sorted(tokens):
            vault.add(t, fake_nir(t))
            vault.add(t, fake_nir(t))
    inc = cases.store.open_from_alerts([harvest_alert()], actor="bot").created[0]
    return cases, inc, exposed, priv, tokens


def test_with_the_dpo_key_tokens_become_nirs_and_the_act_is_audited(sealed, tmp_path):
    cases, inc, exposed, priv, _ = sealed
    out = tmp_path / "reid.csv"
    found, missing = cases.reidentify(inc, priv, out, actor="dpo", passphrase=b"correct horse")
    assert (found, missing) == (201, 0)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["token"]: r["nir"] for r in rows} == {t: fake_nir(t) for t in exposed}
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    last = cases.store.audit_trail(inc)[-1]
    assert last.action == "reidentify" and last.actor == "dpo"
    assert last.details["reidentified"] == 201


def test_without_the_dpo_key_reidentification_is_impossible_and_the_attempt_is_audited(
    sealed, tmp_path
):
    cases, inc, _, priv, _ = sealed
    other_priv, other_pub = tmp_path / "other.key", tmp_path / "other.pub"
    generate_dpo_keys(other_priv, other_pub, None)
    with pytest.raises(KeyMaterialError, match="sealed for DPO key"):
        cases.reidentify(inc, other_priv, tmp_path / "x.csv", actor="mallory")
    with pytest.raises(KeyMaterialError, match="passphrase"):
        cases.reidentify(inc, priv, tmp_path / "x.csv", actor="mallory", passphrase=b"wrong")
    with pytest.raises(KeyMaterialError, match="passphrase"):
        cases.reidentify(inc, priv, tmp_path / "x.csv", actor="mallory")
    assert not (tmp_path / "x.csv").exists()
    refused = [e for e in cases.store.audit_trail(inc) if e.action == "reidentify.refused"]
    assert [e.actor for e in refused] == ["mallory"] * 3


def test_no_raw_nir_is_stored_anywhere_in_rempart_state(sealed, tmp_path):
    _cases, _, _, _, tokens = sealed
    blobs = b"".join(
        p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix in (".db", ".parquet", ".db-wal", "")
    )
    assert blobs  # the state database and the archive were read
    for t in tokens:
        assert fake_nir(t).encode() not in blobs


def test_a_tampered_vault_entry_fails_authentication(sealed, tmp_path):
    import sqlite3

    cases, _inc, exposed, priv, _ = sealed
    db = sqlite3.connect(tmp_path / "state.db")
    a, b = sorted(exposed)[:2]
    ct_b = db.execute("SELECT nonce, ciphertext FROM cases_vault WHERE token=?", (b,)).fetchone()
    db.execute("UPDATE cases_vault SET nonce=?, ciphertext=? WHERE token=?", (*ct_b, a))
    db.commit()
    from rempart.cases.vault import load_private_key

    with pytest.raises(KeyMaterialError, match="fails authentication"):
        reveal(cases.sessions, load_private_key(priv, b"correct horse"), [a])


def test_vault_seals_each_token_once_across_runs(sealed):
    cases, _, _, _, tokens = sealed
    again = Vault.from_public_key_file(cases.sessions, cases.settings.dpo_public_key)
    again.add_many((t, fake_nir(t)) for t in tokens)
    again.close()
    assert again.added == 0
