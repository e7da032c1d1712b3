"""Key rotation of encrypted columns: resumable, verified, atomic.

``rotate_file`` decrypts every value of the named columns and re-encrypts it under the target
key, streaming. Every ``checkpoint_every`` records it makes the work file durable and records,
in a small JSON checkpoint beside the output, how far it got in the input and in the output and
a running digest of the plaintexts. Run again after an interruption (Ctrl-C, a killed process,
a reboot) and it truncates the work file to the checkpoint and goes on from there.

At the end it reads the work file back, decrypts every value with the new key and compares the
digest and the record count with those of the input; only then is the work file renamed onto
the output. Old keys are never removed here: :func:`key_usage` tells which files still use a
key, and :meth:`Keyring.retire` is refused by the CLI while any does.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rempart.errors import InputError, KeyMaterialError, StoreError
from rempart.protect.crypto import PREFIX, CellCipher, Keyring, parse_cell
from rempart.protect.transform import table_format

_MOD = 1 << 256


def _digest_key(cipher: CellCipher) -> bytes:
    assert cipher.key_id is not None
    return hashlib.sha256(
        b"rempart/rotate-digest\x00" + cipher.keyring.secret(cipher.key_id)
    ).digest()


class RotationInterrupted(Exception):
    """Raised by the ``interrupt_after`` test hook (behaves like a crash)."""


@dataclass
class RotationResult:
    rows: int = 0
    cells: int = 0
    resumed_at_row: int = 0
    verified: bool = False
    from_keys: set[str] = field(default_factory=set)
    seconds: float = 0.0


def _cell_digest(key: bytes, row: int, column: str, plain: str) -> int:
    """Keyed (HMAC) so that the checkpoint, which holds the running sum, reveals nothing."""
    h = hmac.new(key, f"{row}\x00{column}\x00{plain}".encode(), hashlib.sha256).digest()
    return int.from_bytes(h, "big")


class _Checkpoint:
    def __init__(self, path: Path, identity: dict[str, Any]):
        self.path = path
        self.identity = identity
        self.state: dict[str, Any] = {"offset": 0, "out_size": 0, "rows": 0, "cells": 0,
                                      "digest": "0", "from_keys": []}  # fmt: skip

    def load(self) -> bool:
        if not self.path.exists():
            return False
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise StoreError("rotation checkpoint is unreadable", where=str(self.path),
                             hint="delete it to start over") from None  # fmt: skip
        if doc.get("identity") != self.identity:
            raise StoreError(
                "rotation checkpoint is for another input, columns or key",
                where=str(self.path),
                hint="delete it to start over",
            )
        self.state = doc["state"]
        return True

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"identity": self.identity, "state": self.state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _records(fh: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """CSV records (a quoted field may span lines) with the offset just after each."""
    while True:
        line = fh.readline()
        if not line:
            return
        while line.count(b'"') % 2:
            more = fh.readline()
            if not more:
                break
            line += more
        yield line, fh.tell()


class _CsvCodec:
    def __init__(self, header_line: bytes, columns: list[str], where: str):
        text = header_line.decode("utf-8")
        self.delimiter = max(",;\t|", key=text.split("\n", 1)[0].count)
        self.header = next(csv.reader([text], delimiter=self.delimiter))
        missing = [c for c in columns if c not in self.header]
        if missing:
            raise InputError(f"no column {', '.join(missing)}", where=where)
        self.idx = [(self.header.index(c), c) for c in columns]

    def cells(self, record: bytes) -> list[str]:
        text = record.decode("utf-8")
        if '"' not in text and "\r" not in text:  # fast path: a plain record
            return text.rstrip("\n").split(self.delimiter)
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter))

    def encode(self, row: list[str]) -> bytes:
        d = self.delimiter
        if len(row) > 1 and not any(d in c or '"' in c or "\n" in c or "\r" in c for c in row):
            return (d.join(row) + "\n").encode("utf-8")  # what csv.writer writes for such rows
        buf = io.StringIO()
        csv.writer(buf, delimiter=d, lineterminator="\n").writerow(row)
        return buf.getvalue().encode("utf-8")


def rotate_file(
    src: Path,
    columns: list[str],
    keyring: Keyring,
    *,
    to_key: str | None = None,
    dst: Path | None = None,
    checkpoint_every: int = 50_000,
    on_progress: Callable[[int, int], None] | None = None,
    interrupt_after: int | None = None,
) -> RotationResult:
    """Re-encrypt ``columns`` of ``src`` under ``to_key`` (default: the active key).

    ``on_progress(done_bytes, total_bytes)``; ``interrupt_after``: test hook, raise
    :class:`RotationInterrupted` after that many records (no checkpoint at that point).
    """
    if not src.is_file():
        raise InputError("no such file", where=str(src))
    started = time.perf_counter()
    dst = dst or src
    target = to_key or keyring.active
    if target is None:
        raise KeyMaterialError("no target key: the keyring has no active key")
    keyring.secret(target)
    cipher = CellCipher(keyring, target)
    fmt = table_format(src)
    stat = src.stat()
    identity = {"src": str(src.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "columns": columns, "to": target, "format": fmt}  # fmt: skip
    ckpt = _Checkpoint(dst.with_name(f".{dst.name}.rotate.json"), identity)
    work = dst.with_name(f".{dst.name}.rotating")
    resumed = ckpt.load()
    result = RotationResult(resumed_at_row=ckpt.state["rows"] if resumed else 0)
    if fmt == "parquet":
        _rotate_parquet(src, work, columns, cipher, ckpt, resumed, checkpoint_every,
                        on_progress, interrupt_after)  # fmt: skip
    else:
        _rotate_lines(src, work, fmt, columns, cipher, ckpt, resumed, checkpoint_every,
                      on_progress, interrupt_after)  # fmt: skip
    state = ckpt.state
    rows, digest = _verify(work, fmt, columns, cipher, target)
    if rows != state["rows"] or digest != int(state["digest"]):
        work.unlink(missing_ok=True)
        ckpt.remove()
        raise StoreError("verification failed: re-encrypted data differs; input left unchanged",
                         where=str(src))  # fmt: skip
    os.replace(work, dst)
    ckpt.remove()
    result.rows, result.cells = state["rows"], state["cells"]
    result.from_keys = set(state["from_keys"])
    result.verified = True
    result.seconds = time.perf_counter() - started
    return result


def _reencrypt(cipher: CellCipher, column: str, value: str, row: int, where: str,
               from_keys: set[str]) -> tuple[str, int]:  # fmt: skip
    kid, _ = parse_cell(value, where=where)
    from_keys.add(kid)
    plain = cipher.decrypt(column, value, where=where)
    out = value if kid == cipher.key_id else cipher.encrypt(column, plain)
    return out, _cell_digest(_digest_key(cipher), row, column, plain)


def _rotate_lines(src: Path, work: Path, fmt: str, columns: list[str], cipher: CellCipher,
                  ckpt: _Checkpoint, resumed: bool, every: int,
                  on_progress: Callable[[int, int], None] | None,
                  interrupt_after: int | None) -> None:  # fmt: skip
    st = ckpt.state
    total = src.stat().st_size
    from_keys = set(st["from_keys"])
    digest, rows, cells = int(st["digest"]), st["rows"], st["cells"]
    done_here = 0
    if resumed and not work.exists():
        raise StoreError("rotation checkpoint without its work file", where=str(ckpt.path),
                         hint="delete the checkpoint to start over")  # fmt: skip
    with open(src, "rb") as fi, open(work, "r+b" if resumed else "wb") as fo:
        codec: _CsvCodec | None = None
        if fmt == "csv":
            header = fi.readline()
            codec = _CsvCodec(header, columns, str(src))
            if not resumed:
                fo.write(header)
                st["offset"], st["out_size"] = fi.tell(), fo.tell()
        if resumed:
            fo.truncate(st["out_size"])
        fo.seek(st["out_size"])
        fi.seek(st["offset"])
        records = (
            _records(fi) if fmt == "csv" else ((ln, fi.tell()) for ln in iter(fi.readline, b""))
        )
        for record, end in records:
            where = f"{src}: record {rows + 1}"
            if codec is not None:
                row = codec.cells(record)
                for i, col in codec.idx:
                    if i < len(row) and row[i]:
                        row[i], d = _reencrypt(cipher, col, row[i], rows, where, from_keys)
                        digest, cells = (digest + d) % _MOD, cells + 1
                fo.write(codec.encode(row))
            elif record.strip():
                try:
                    rec = json.loads(record)
                except ValueError:
                    raise InputError("not valid JSON", where=where) from None
                for col in columns:
                    v = rec.get(col) if isinstance(rec, dict) else None
                    if isinstance(v, str) and v:
                        rec[col], d = _reencrypt(cipher, col, v, rows, where, from_keys)
                        digest, cells = (digest + d) % _MOD, cells + 1
                fo.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
            rows += 1
            done_here += 1
            if interrupt_after is not None and done_here >= interrupt_after:
                raise RotationInterrupted(f"interrupted after {rows} records")
            if rows % every == 0:
                fo.flush()
                os.fsync(fo.fileno())
                st.update(offset=end, out_size=fo.tell(), rows=rows, cells=cells,
                          digest=str(digest), from_keys=sorted(from_keys))  # fmt: skip
                ckpt.save()
                if on_progress:
                    on_progress(end, total)
        fo.flush()
        os.fsync(fo.fileno())
        st.update(offset=fi.tell(), out_size=fo.tell(), rows=rows, cells=cells,
                  digest=str(digest), from_keys=sorted(from_keys))  # fmt: skip
        ckpt.save()
        if on_progress:
            on_progress(total, total)


def _rotate_parquet(src: Path, work: Path, columns: list[str], cipher: CellCipher,
                    ckpt: _Checkpoint, resumed: bool, every: int,
                    on_progress: Callable[[int, int], None] | None,
                    interrupt_after: int | None) -> None:  # fmt: skip
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise InputError(f"no column {', '.join(missing)}", where=str(src))
    parts = work.with_name(work.name + ".d")
    if not resumed:
        shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(exist_ok=True)
    st = ckpt.state
    from_keys = set(st["from_keys"])
    digest, rows, cells = int(st["digest"]), st["rows"], st["cells"]
    n_groups = pf.num_row_groups
    start_rows = rows
    for rg in range(st["offset"], n_groups):
        table = pf.read_row_group(rg)
        new_cols = []
        for name in table.column_names:
            col = table.column(name)
            if name in columns:
                out = []
                for i, v in enumerate(col.to_pylist()):
                    if isinstance(v, str) and v:
                        v, d = _reencrypt(cipher, name, v, rows + i, f"{src}: row {rows + i + 1}",
                                          from_keys)  # fmt: skip
                        digest, cells = (digest + d) % _MOD, cells + 1
                    out.append(v)
                col = pa.chunked_array([pa.array(out, pa.string())])
            new_cols.append(col)
        pq.write_table(pa.table(new_cols, names=table.column_names), parts / f"{rg:08d}.parquet")
        rows += table.num_rows
        if interrupt_after is not None and rows - start_rows >= interrupt_after:
            raise RotationInterrupted(f"interrupted after {rows} rows")
        st.update(offset=rg + 1, rows=rows, cells=cells, digest=str(digest),
                  from_keys=sorted(from_keys))  # fmt: skip
        ckpt.save()
        if on_progress:
            on_progress(rg + 1, n_groups)
    writer = None
    try:
        for rg in range(n_groups):
            t = pq.read_table(parts / f"{rg:08d}.parquet")
            if writer is None:
                writer = pq.ParquetWriter(work, t.schema)
            writer.write_table(t)
    finally:
        if writer is not None:
            writer.close()
    shutil.rmtree(parts, ignore_errors=True)
    _ = every


def _verify(work: Path, fmt: str, columns: list[str], cipher: CellCipher,
            target: str) -> tuple[int, int]:  # fmt: skip
    """Decrypt every value of the output with the target key; ``(records, digest)``."""
    digest, rows = 0, 0

    def check(col: str, v: str, row: int) -> None:
        nonlocal digest
        where = f"{work}: record {row + 1}"
        kid, _ = parse_cell(v, where=where)
        if kid != target:
            raise StoreError(f"verification: value still under key {kid}", where=where)
        plain = cipher.decrypt(col, v, where=where)
        digest = (digest + _cell_digest(_digest_key(cipher), row, col, plain)) % _MOD

    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(work)
        for rg in range(pf.num_row_groups):
            t = pf.read_row_group(rg, columns=columns)
            values = {c: t.column(c).to_pylist() for c in columns}
            for i in range(t.num_rows):
                for c in columns:
                    v = values[c][i]
                    if isinstance(v, str) and v:
                        check(c, v, rows + i)
            rows += t.num_rows
        return rows, digest
    with open(work, "rb") as fh:
        if fmt == "csv":
            codec = _CsvCodec(fh.readline(), columns, str(work))
            for record, _ in _records(fh):
                row = codec.cells(record)
                for i, col in codec.idx:
                    if i < len(row) and row[i]:
                        check(col, row[i], rows)
                rows += 1
        else:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    for col in columns:
                        v = rec.get(col)
                        if isinstance(v, str) and v:
                            check(col, v, rows)
                rows += 1
    return rows, digest


def key_usage(paths: Iterable[Path], key_id: str) -> dict[str, int]:
    """How many values encrypted under ``key_id`` each file holds (files with none omitted)."""
    needle = f"{PREFIX}{key_id}:".encode()
    usage: dict[str, int] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            n = 0
            if f.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(f)
                for name in table.column_names:
                    for v in table.column(name).to_pylist():
                        if isinstance(v, str) and v.startswith(needle.decode()):
                            n += 1
            else:
                try:
                    with open(f, "rb") as fh:
                        tail = b""
                        while block := fh.read(8 << 20):
                            data = tail + block
                            n += data.count(needle)
                            tail = data[-(len(needle) - 1) :]
                except OSError as exc:
                    raise InputError(f"cannot read: {exc.strerror}", where=str(f)) from None
            if n:
                usage[str(f)] = n
    return usage
