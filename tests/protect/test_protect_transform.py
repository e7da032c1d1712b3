"""Streaming column transforms on CSV, JSONL and Parquet; fail closed, no partial output."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.errors import InputError, KeyMaterialError
from rempart.protect.crypto import CellCipher, Keyring
from rempart.protect.fpe import NirFpe
from rempart.protect.identifiers import is_valid_nir
from rempart.protect.tokens import TOKEN_HEX_CHARS, Tokenizer, TokenKey, generate_key
from rempart.protect.transform import (
    decrypt_fn,
    department_of,
    encrypt_fn,
    fpe_fn,
    mask_fn,
    pseudonymize_fn,
    transform_file,
)

NIRS = ["295109912611193", "253072B07300470", "253072A07300443"]
RUN = [str(Path(sys.executable).parent / "rempart")]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def patients(tmp_path):
    rows = [["nir", "date_naissance", "commune", "email"]]
    rows += [
        [n, "12/03/1985", c, f"p{i}@exemple.fr"]
        for i, (n, c) in enumerate(zip(NIRS, ["75056", "2A004", "97105"]))
    ]
    rows.append(["295109912611199", "pas une date", "x", ""])  # invalid NIR, bad date
    return _csv(tmp_path / "patients.csv", rows)


def _read_csv(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_hmac_pseudonymisation_normalises_nirs_and_sets_invalid_ones_aside(patients, tmp_path):
    tok = Tokenizer(generate_key(), "stats")
    out = tmp_path / "out.csv"
    report = transform_file(patients, out, {"nir": pseudonymize_fn(tok, nir=True)})
    rows = _read_csv(out)
    assert [r[0] for r in rows[1:4]] == [tok.token(n) for n in NIRS]
    assert rows[4][0] == "" and report.rejected == 1
    assert "patients.csv:5 nir" in report.rejects[0] and "295109912611199" not in report.rejects[0]


def test_fpe_pseudonymisation_gives_nir_shaped_non_nirs(patients, tmp_path):
    fpe = NirFpe(generate_key())
    out = tmp_path / "out.csv"
    transform_file(patients, out, {"nir": fpe_fn(fpe)})
    tokens = [r[0] for r in _read_csv(out)[1:4]]
    assert all(len(t) == 15 and not is_valid_nir(t) for t in tokens)
    assert [fpe.detokenize(t) for t in tokens] == NIRS


def test_masking_and_generalisation(patients, tmp_path):
    out = tmp_path / "out.csv"
    transform_file(
        patients,
        out,
        {
            "date_naissance": mask_fn("year"),
            "commune": mask_fn("departement"),
            "nir": mask_fn("nir"),
            "email": mask_fn("redact"),
        },
    )
    rows = _read_csv(out)
    assert rows[1] == ["2 95 ** ** *** *** **", "1985", "75", ""]
    assert rows[2][2] == "2A" and rows[3][2] == "971"


def test_department_of_postal_and_commune_codes():
    assert department_of("75015") == "75"
    assert department_of("2B033") == "2B"
    assert department_of("97411") == "974"


def test_encrypt_then_decrypt_csv_jsonl_parquet(tmp_path):
    ring = Keyring()
    ring.add("k1")
    c = CellCipher(ring)
    rows = [{"nir": n, "n": i} for i, n in enumerate(NIRS)]
    src_csv = _csv(tmp_path / "a.csv", [["nir", "n"]] + [[r["nir"], str(r["n"])] for r in rows])
    src_jsonl = tmp_path / "a.jsonl"
    src_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src_pq = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src_pq)
    for src in (src_csv, src_jsonl, src_pq):
        enc = tmp_path / f"enc{src.suffix}"
        dec = tmp_path / f"dec{src.suffix}"
        transform_file(src, enc, {"nir": encrypt_fn(c, "nir")})
        assert not any(n.encode() in enc.read_bytes() for n in NIRS)
        transform_file(enc, dec, {"nir": decrypt_fn(c, "nir")})
        if src.suffix == ".parquet":
            assert pq.read_table(dec).column("nir").to_pylist() == NIRS
        else:
            assert all(n in dec.read_text() for n in NIRS)


def test_wrong_key_leaves_no_output_and_keeps_an_existing_one(tmp_path, patients):
    ring, other = Keyring(), Keyring()
    ring.add("k1")
    other.add("k1")
    enc = tmp_path / "enc.csv"
    transform_file(patients, enc, {"email": encrypt_fn(CellCipher(ring), "email")})
    out = tmp_path / "dec.csv"
    with pytest.raises(KeyMaterialError, match="does not authenticate"):
        transform_file(enc, out, {"email": decrypt_fn(CellCipher(other), "email")})
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec.csv"] * 0 + sorted(
        ["enc.csv", "patients.csv"]
    )
    out.write_text("previous\n")
    with pytest.raises(KeyMaterialError):
        transform_file(enc, out, {"email": decrypt_fn(CellCipher(other), "email")})
    assert out.read_text() == "previous\n"


def test_unknown_column_is_one_clear_error(patients, tmp_path):
    with pytest.raises(InputError, match="no column nope"):
        transform_file(patients, tmp_path / "o.csv", {"nope": mask_fn("redact")})


def test_malformed_jsonl_lines_are_counted_with_their_origin(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"nir": "295109912611193"}\nnot json\n[1]\n')
    report = transform_file(src, tmp_path / "o.jsonl", {"nir": mask_fn("nir")})
    assert report.rows == 1 and report.rejected == 2
    assert report.rejects[0].startswith(f"{src}:2")


def test_cli_encrypt_decrypt_with_keyring_and_wrong_passphrase(tmp_path, patients):
    env = {"REMPART_KEYRING_PASSPHRASE": "correct horse battery", "PATH": "/usr/bin:/bin"}
    ring = tmp_path / "ring.json"

    def run(*a, e=env):
        return subprocess.run(
            [*RUN, "protect", *a],
            capture_output=True,
            text=True,
            env=e,
        )

    assert run("keys", "init", str(ring)).returncode == 0
    enc, dec = tmp_path / "enc.csv", tmp_path / "dec.csv"
    r = run("encrypt", str(patients), "-o", str(enc), "-k", "nir,email", "--keyring", str(ring))
    assert r.returncode == 0, r.stderr
    r = run("decrypt", str(enc), "-o", str(dec), "-k", "nir,email", "--keyring", str(ring))
    assert r.returncode == 0 and dec.read_text() == patients.read_text()
    bad = dict(env, REMPART_KEYRING_PASSPHRASE="wrong horse battery")
    r = run(
        "decrypt",
        str(enc),
        "-o",
        str(tmp_path / "x.csv"),
        "-k",
        "nir",
        "--keyring",
        str(ring),
        e=bad,
    )
    assert r.returncode == 2 and "wrong passphrase" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "x.csv").exists()


@given(st.binary(min_size=16, max_size=80), st.text(max_size=40), st.text(min_size=1, max_size=8))
def test_tokens_are_the_standard_hmac_sha256_of_purpose_and_identifier(secret, ident, purpose):
    """The tokenizer builds HMAC on keyed SHA-256 states (not through ``hmac.HMAC``), keys
    longer than a block included: the token must stay HMAC-SHA256(key, purpose NUL identifier),
    truncated, prefixed by the key id."""
    key = TokenKey(key_id="k7", secret=secret)
    expected = hmac.new(secret, purpose.encode() + b"\x00" + ident.encode(), hashlib.sha256)
    tokenizer = Tokenizer(key, purpose)
    fresh = tokenizer.fresh_token(ident)  # the uncached path the columnar decode takes
    assert not tokenizer._cache
    token = tokenizer.token(ident)
    assert token == fresh == f"k7.{expected.hexdigest()[:TOKEN_HEX_CHARS]}"
    assert tokenizer.token(ident) == token and len(tokenizer._cache) == 1


def test_tokens_are_the_same_on_cpythons_own_sha256(monkeypatch):
    """Tokens made with OpenSSL's SHA-256 states (the default) and with CPython's own
    implementation (``_sha256``; ``_sha2`` from Python 3.12) are the same."""
    import importlib

    import rempart.protect.tokens as tokens

    try:
        own = importlib.import_module("_sha256").sha256
    except ImportError:  # Python 3.12+
        own = importlib.import_module("_sha2").sha256

    for secret in (b"s" * 16, b"k" * 64, b"long" * 30):
        key = TokenKey(key_id="k7", secret=secret)
        openssl = Tokenizer(key).token("185057800608436")
        monkeypatch.setattr(tokens, "_sha256", own)
        assert Tokenizer(key).token("185057800608436") == openssl
        monkeypatch.undo()
