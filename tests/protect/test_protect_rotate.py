"""Key rotation: completes, resumes after an interruption (even a kill), verifies, retires."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.errors import KeyMaterialError, StoreError
from rempart.protect.crypto import CellCipher, Keyring
from rempart.protect.rotate import RotationInterrupted, key_usage, rotate_file

RUN = [str(Path(sys.executable).parent / "rempart")]


def _encrypted_csv(path: Path, ring: Keyring, rows: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    c = CellCipher(ring)
    values = [str(rng.randrange(10**14, 10**15)) for _ in range(rows)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,nir,note\n")
        for i, v in enumerate(values):
            note = '"a, ""quoted""\nmultiline"' if i % 1000 == 7 else "x"
            fh.write(f"{i},{c.encrypt('nir', v)},{note}\n")
    return values


def _plain(path: Path, ring: Keyring) -> list[str]:
    import csv

    c = CellCipher(ring)
    with open(path, newline="", encoding="utf-8") as fh:
        return [c.decrypt("nir", r["nir"]) for r in csv.DictReader(fh)]


@pytest.fixture
def ring():
    r = Keyring()
    r.add("k1")
    return r


def test_rotation_of_a_few_megabytes_completes_and_verifies(tmp_path, ring):
    src = tmp_path / "data.csv"
    values = _encrypted_csv(src, ring, 40_000)
    assert src.stat().st_size > 3_000_000
    ring.add("k2")
    result = rotate_file(src, ["nir"], ring, checkpoint_every=5_000)
    assert result.verified and result.rows == 40_000 and result.from_keys == {"k1"}
    assert _plain(src, ring) == values
    assert key_usage([src], "k1") == {} and key_usage([src], "k2") == {str(src): 40_000}
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]  # no work file left


def test_rotation_resumes_after_an_interruption(tmp_path, ring):
    src = tmp_path / "data.csv"
    values = _encrypted_csv(src, ring, 20_000)
    ring.add("k2")
    with pytest.raises(RotationInterrupted):
        rotate_file(src, ["nir"], ring, checkpoint_every=3_000, interrupt_after=10_500)
    assert key_usage([src], "k2") == {}  # input untouched so far
    result = rotate_file(src, ["nir"], ring, checkpoint_every=3_000)
    assert result.resumed_at_row == 9_000 and result.verified
    assert _plain(src, ring) == values and key_usage([src], "k1") == {}


def test_rotation_resumes_after_the_process_is_killed(tmp_path, ring):
    keyfile = tmp_path / "keys"
    src = tmp_path / "data.csv"
    values = _encrypted_csv(src, ring, 60_000)
    ring.add("k2")
    keyfile.write_text(f"k2:{ring.keys['k2'].hex()}\nk1:{ring.keys['k1'].hex()}\n")
    keyfile.chmod(0o600)
    ckpt = tmp_path / ".data.csv.rotate.json"
    proc = subprocess.Popen(
        [
            *RUN,
            "protect",
            "rotate",
            str(src),
            "-k",
            "nir",
            "--key-file",
            str(keyfile),
            "--checkpoint-every",
            "2000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "rotation finished before it could be killed"
    out = subprocess.run(
        [*RUN, "protect", "rotate", str(src), "-k", "nir", "--key-file", str(keyfile)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout and "resumed at record" in out.stdout
    assert _plain(src, ring) == values and key_usage([src], "k1") == {}


def test_parquet_rotation_resumes_per_row_group(tmp_path, ring):
    c = CellCipher(ring)
    values = [f"v{i}" for i in range(5_000)]
    src = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"nir": [c.encrypt("nir", v) for v in values], "i": range(5_000)}),
        src,
        row_group_size=1_000,
    )
    ring.add("k2")
    with pytest.raises(RotationInterrupted):
        rotate_file(src, ["nir"], ring, interrupt_after=3_000)
    result = rotate_file(src, ["nir"], ring)
    assert result.resumed_at_row == 2_000 and result.verified
    table = pq.read_table(src)
    assert [CellCipher(ring).decrypt("nir", v) for v in table.column("nir").to_pylist()] == values
    assert table.column("i").to_pylist() == list(range(5_000))


def test_wrong_key_stops_rotation_and_leaves_input_intact(tmp_path, ring):
    src = tmp_path / "data.csv"
    _encrypted_csv(src, ring, 100)
    before = src.read_bytes()
    stranger = Keyring()
    stranger.add("k1")
    stranger.add("k2")
    with pytest.raises(KeyMaterialError):
        rotate_file(src, ["nir"], stranger)
    assert src.read_bytes() == before


def test_checkpoint_for_other_input_is_refused(tmp_path, ring):
    src = tmp_path / "data.csv"
    _encrypted_csv(src, ring, 3_000)
    ring.add("k2")
    with pytest.raises(RotationInterrupted):
        rotate_file(src, ["nir"], ring, checkpoint_every=500, interrupt_after=1_200)
    src.write_text(src.read_text() + "")  # same content, new mtime
    os.utime(src, ns=(1, 1))
    with pytest.raises(StoreError, match="another input"):
        rotate_file(src, ["nir"], ring)


def test_cli_retire_refuses_while_a_file_still_uses_the_key(tmp_path, ring):
    env = {"REMPART_KEYRING_PASSPHRASE": "correct horse battery", "PATH": "/usr/bin:/bin"}
    path = tmp_path / "ring.json"
    ring.save(path, env["REMPART_KEYRING_PASSPHRASE"])
    src = tmp_path / "data.csv"
    _encrypted_csv(src, ring, 50)

    def run(*a):
        return subprocess.run([*RUN, "protect", *a], capture_output=True, text=True, env=env)

    assert run("keys", "add", str(path), "--id", "k2").returncode == 0
    r = run("keys", "retire", str(path), "k1", "--check", str(tmp_path))
    assert r.returncode == 2 and "still used by 50 value(s)" in r.stderr
    assert run("rotate", str(src), "-k", "nir", "--keyring", str(path)).returncode == 0
    r = run("keys", "retire", str(path), "k1", "--check", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "k1 retired" in run("keys", "list", str(path)).stdout


@given(st.lists(st.text(alphabet='ab ,"\n\r\t;é', max_size=5), min_size=1, max_size=5))
def test_rotation_csv_codec_reads_and_writes_like_the_csv_module(row):
    import csv
    import io

    from rempart.protect.rotate import _CsvCodec

    codec = _CsvCodec(b"a,b\n", ["b"], "test")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    assert codec.encode(row) == buf.getvalue().encode()
    assert codec.cells(buf.getvalue().encode()) == next(
        csv.reader(io.StringIO(buf.getvalue(), newline=""))
    )
