"""Care relationship CSVs (``rempart.ingest.care``): tokenised like the log, bad rows set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.history import beneficiary_hash
from rempart.errors import InputError
from rempart.ingest.care import CareHistory, load_care_history
from rempart.ingest.normalise import normalise_identifier
from rempart.protect.identifiers import nir_key
from rempart.protect.tokens import Tokenizer, TokenKey
from tests.protect.protect_strategies import nirs

TOKENIZER = Tokenizer(TokenKey("t1", b"k" * 32))
NIR_1 = "1850578006084" + nir_key("1850578006084")
NIR_2 = "2850799351234" + nir_key("2850799351234")
WRONG_KEY = NIR_1[:13] + f"{(int(NIR_1[13:]) + 1) % 97:02d}"
CORSICAN = "185052A006084" + nir_key("185052A006084")
CORSICAN_WRONG_KEY = CORSICAN[:13] + f"{(int(CORSICAN[13:]) + 1) % 97:02d}"


def _hash(nir: str) -> int:
    """What the log's ingestion and the engine make of a beneficiary id."""
    return beneficiary_hash(TOKENIZER.token(normalise_identifier(nir)))


def _sets(care: CareHistory) -> dict[str, set[int]]:
    return {account: set(hashes) for account, hashes in care.accounts.items()}


def test_relationships_are_the_hashes_the_log_gives_extra_columns_ignored(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text(
        f"last_claim,Beneficiary,account\n2026-01-02,{NIR_1},PH0001\n"
        f"2026-02-03,{NIR_1[:1]} {NIR_1[1:3]}.{NIR_1[3:]},PH0001\n",
        encoding="utf-8",
    )
    b = tmp_path / "b.csv"
    b.write_text(f"account,beneficiary\nPH0001,{NIR_2}\nMD0002,{NIR_2}\n\n", encoding="utf-8")
    care = load_care_history([a, b], TOKENIZER)
    assert _sets(care) == {"PH0001": {_hash(NIR_1), _hash(NIR_2)}, "MD0002": {_hash(NIR_2)}}
    assert list(care.accounts["PH0001"]) == sorted({_hash(NIR_1), _hash(NIR_2)})
    assert (care.files, care.rows, care.relationships) == (2, 4, 3)
    assert not care.rejected
    assert care.note() == "care history: 3 relationships of 2 accounts from 4 rows in 2 files"


def test_a_spreadsheet_export_with_semicolons_and_a_byte_order_mark_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffAccount;Beneficiary;Dernier acte\n".encode()
        + f"PH0001;{NIR_1};02/01/2026\nPH0001;{NIR_2};03/02/2026\n".encode()
    )
    care = load_care_history([path], TOKENIZER)
    assert _sets(care) == {"PH0001": {_hash(NIR_1), _hash(NIR_2)}}
    assert not care.rejected


def test_bad_rows_are_counted_by_reason_and_kept_with_their_line_without_raw_nir(
    tmp_path: Path,
) -> None:
    path = tmp_path / "care.csv"
    path.write_bytes(
        b"account,beneficiary\n"
        + f"PH0001,{NIR_1}\n".encode()
        + f"PH0001,{WRONG_KEY}\n".encode()  # line 3
        + f",{NIR_2}\n".encode()  # line 4
        + b"PH0001,12/34\n"  # line 5
        + b"PH\xff01,ABC123\n"  # line 6
        + b"PH0001\n"  # line 7
        + f"PH0001,{CORSICAN_WRONG_KEY}\n".encode()  # line 8
        + f"PH0001,{CORSICAN}\n".encode()
    )
    care = load_care_history([path], TOKENIZER, tmp_path / "q")
    assert _sets(care) == {"PH0001": {_hash(NIR_1), _hash(CORSICAN)}}
    assert dict(care.rejected) == {
        "bad_nir": 2,
        "missing_field": 2,
        "bad_identifier": 1,
        "bad_encoding": 1,
    }
    assert care.rows == 8
    assert care.quarantine_file is not None
    kept = Path(care.quarantine_file).read_text(encoding="utf-8")
    records = [json.loads(x) for x in kept.splitlines()]
    assert [(r["line"], r["reason"]) for r in records] == [
        (3, "bad_nir"),
        (4, "missing_field"),
        (5, "bad_identifier"),
        (6, "bad_encoding"),
        (7, "missing_field"),
        (8, "bad_nir"),
    ]
    assert all(r["source"] == str(path) for r in records)
    for raw in (WRONG_KEY, NIR_2, CORSICAN_WRONG_KEY):
        assert raw not in kept, "no raw NIR in the quarantine"
    assert "6 bad rows (bad_encoding 1, bad_identifier 1, bad_nir 2, missing_field 2)" in (
        care.note()
    )
    assert care.quarantine_file in care.note()


def test_a_file_without_the_columns_or_missing_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "care.csv"
    path.write_text(f"login,nir\nPH0001,{NIR_1}\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_care_history([path], TOKENIZER)
    assert exc.value.where == f"{path}:1"
    assert "account, beneficiary" in str(exc.value)
    with pytest.raises(InputError, match="not found"):
        load_care_history([tmp_path / "nope.csv"], TOKENIZER)


@given(nirs(), st.lists(st.sampled_from([" ", ".", "-", ""]), min_size=14, max_size=14))
def test_any_valid_nir_however_written_is_the_same_relationship(
    nir: str, separators: list[str]
) -> None:
    import tempfile

    written = nir[0] + "".join(sep + c for sep, c in zip(separators, nir[1:], strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "care.csv"
        path.write_text(f"account,beneficiary\nPH0001,{written.lower()}\n", encoding="utf-8")
        care = load_care_history([path], TOKENIZER)
    assert not care.rejected
    assert _sets(care) == {"PH0001": {_hash(nir)}}
