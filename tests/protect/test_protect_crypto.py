"""AES-GCM cells and the keyring: every failure is one KeyMaterialError."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.errors import KeyMaterialError
from rempart.protect.crypto import CellCipher, Keyring, key_ids_in, parse_cell, resolve_keyring


@pytest.fixture
def ring():
    r = Keyring()
    r.add("k1")
    return r


@given(st.text(max_size=200), st.text(min_size=1, max_size=20))
def test_cells_round_trip(value, column):
    r = Keyring()
    r.add("k1")
    c = CellCipher(r)
    cell = c.encrypt(column, value)
    assert cell.startswith("enc:v1:k1:")
    assert c.decrypt(column, cell) == value


def test_same_value_encrypts_differently_each_time(ring):
    c = CellCipher(ring)
    assert c.encrypt("nir", "x") != c.encrypt("nir", "x")


def test_value_moved_to_another_column_does_not_decrypt(ring):
    c = CellCipher(ring)
    cell = c.encrypt("nir", "295109912611193")
    with pytest.raises(KeyMaterialError, match="does not authenticate"):
        c.decrypt("email", cell)


def test_tampered_value_does_not_decrypt(ring):
    c = CellCipher(ring)
    cell = c.encrypt("nir", "295109912611193")
    flipped = cell[:-3] + ("A" if cell[-3] != "A" else "B") + cell[-2:]
    with pytest.raises(KeyMaterialError, match="does not authenticate"):
        c.decrypt("nir", flipped)


def test_relabelled_key_id_does_not_decrypt(ring):
    ring.add("k2")
    c = CellCipher(ring, "k1")
    cell = c.encrypt("nir", "v").replace("enc:v1:k1:", "enc:v1:k2:")
    with pytest.raises(KeyMaterialError):
        c.decrypt("nir", cell)


def test_missing_key_is_named(ring):
    cell = CellCipher(ring).encrypt("nir", "v")
    other = Keyring()
    other.add("k9")
    with pytest.raises(KeyMaterialError, match="key k1 is not in the keyring"):
        CellCipher(other).decrypt("nir", cell)


def test_plain_value_is_refused(ring):
    with pytest.raises(KeyMaterialError, match="not encrypted"):
        CellCipher(ring).decrypt("nir", "295109912611193")


def test_keyring_file_round_trip_and_wrong_passphrase(tmp_path, ring):
    path = tmp_path / "ring.json"
    ring.add("k2")
    ring.save(path, "correct horse battery")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert ring.keys["k1"].hex() not in path.read_text()
    loaded = Keyring.load(path, "correct horse battery")
    assert loaded.keys == ring.keys and loaded.active == "k2"
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        Keyring.load(path, "wrong horse battery")


def test_keyring_repr_never_shows_secrets(ring):
    assert ring.keys["k1"].hex() not in repr(ring)


def test_modified_keyring_file_is_refused(tmp_path, ring):
    path = tmp_path / "ring.json"
    ring.save(path, "correct horse battery")
    text = path.read_text()
    path.write_text(text.replace('"ciphertext": "', '"ciphertext": "AAAA'))
    with pytest.raises(KeyMaterialError):
        Keyring.load(path, "correct horse battery")


def test_keys_from_environment_and_key_file(tmp_path, monkeypatch):
    k1, k2 = "11" * 32, "22" * 32
    monkeypatch.setenv("REMPART_DATA_KEYS", f"k2:{k2},k1:{k1}")
    ring = resolve_keyring()
    assert ring.active == "k2" and set(ring.keys) == {"k1", "k2"}
    monkeypatch.delenv("REMPART_DATA_KEYS")
    f = tmp_path / "keys"
    f.write_text(f"k1:{k1}\n")
    f.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="readable by others"):
        resolve_keyring(key_file=f)
    f.chmod(0o600)
    assert resolve_keyring(key_file=f).active == "k1"
    with pytest.raises(KeyMaterialError, match="no data key"):
        resolve_keyring()


def test_retire_refuses_active_and_reserves_the_id(ring):
    ring.add("k2")
    with pytest.raises(KeyMaterialError, match="active"):
        ring.retire("k2")
    ring.retire("k1")
    assert "k1" not in ring.keys and "k1" in ring.retired
    with pytest.raises(KeyMaterialError, match="already used"):
        ring.add("k1")
    with pytest.raises(KeyMaterialError, match="was retired"):
        ring.secret("k1")


def test_key_ids_in_and_parse_cell(ring):
    cell = CellCipher(ring).encrypt("c", "v")
    assert key_ids_in([cell, None, "plain"]) == {"k1"}
    assert parse_cell(cell)[0] == "k1"
