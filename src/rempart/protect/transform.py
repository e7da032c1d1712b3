"""Streaming column transforms on CSV, JSON lines and Parquet: pseudonymise, mask, encrypt.

Each transform reads the input once, in batches (constant memory), writes a temporary file
beside the output and renames it into place only when everything succeeded: a wrong key, a
tampered value or an interruption leaves no partial output. Values a transform cannot handle
(e.g. an invalid NIR asked for a NIR-shaped token) are emptied and counted with their origin.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rempart.errors import InputError, KeyMaterialError
from rempart.protect import identifiers as ids
from rempart.protect.crypto import CellCipher
from rempart.protect.fpe import NirFpe
from rempart.protect.tokens import Tokenizer

CellFn = Callable[[str], str]
BATCH_ROWS = 10_000
MAX_REJECTS_KEPT = 100


@dataclass
class TransformReport:
    rows: int = 0
    cells: int = 0
    rejected: int = 0
    rejects: list[str] = field(default_factory=list)  # "file:line column: reason" (no value)

    def reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.rejects) < MAX_REJECTS_KEPT:
            self.rejects.append(f"{where}: {reason}")


def table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise InputError("unsupported format (CSV, TSV, JSONL or Parquet)", where=str(path))


@contextlib.contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """A temporary path beside ``dst``, renamed onto it on success, removed on any failure."""
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _check_columns(wanted: list[str], present: list[str], where: str) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InputError(
            f"no column {', '.join(missing)}", where=where, hint=f"columns: {', '.join(present)}"
        )


def transform_file(
    src: Path,
    dst: Path,
    ops: dict[str, CellFn],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> TransformReport:
    """Apply ``ops[column](value)`` to every non-empty value of each named column."""
    if not src.is_file():
        raise InputError("no such file", where=str(src))
    fmt = table_format(src)
    report = TransformReport()
    with atomic_output(dst) as tmp:
        if fmt == "csv":
            _csv(src, tmp, ops, report, on_progress)
        elif fmt == "jsonl":
            _jsonl(src, tmp, ops, report, on_progress)
        else:
            _parquet(src, tmp, ops, report, on_progress)
    return report


def _apply(fn: CellFn, value: str, where: str, column: str, report: TransformReport) -> str:
    try:
        out = fn(value)
    except ids.IdentifierError as exc:
        report.reject(f"{where} {column}", exc.message)
        return ""
    report.cells += 1
    return out


def _csv(src: Path, dst: Path, ops: dict[str, CellFn], report: TransformReport,
         on_progress: Callable[[int], None] | None) -> None:  # fmt: skip
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if src.suffix.lower() == ".tsv" else None
    with open(src, newline="", encoding="utf-8") as fi, open(dst, "w", newline="",
                                                            encoding="utf-8") as fo:  # fmt: skip
        if delimiter is None:
            sample = fi.read(65536)
            fi.seek(0)
            first = sample.split("\n", 1)[0]
            delimiter = max(",;\t|", key=first.count)
        reader = csv.reader(fi, delimiter=delimiter)
        writer = csv.writer(fo, delimiter=delimiter, lineterminator="\n")
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file", where=str(src)) from None
        _check_columns(list(ops), header, str(src))
        idx = [(header.index(c), c, fn) for c, fn in ops.items()]
        writer.writerow(header)
        for row in reader:
            where = f"{src}:{reader.line_num}"
            for i, col, fn in idx:
                if i < len(row) and row[i]:
                    row[i] = _apply(fn, row[i], where, col, report)
            writer.writerow(row)
            report.rows += 1
            if on_progress and report.rows % BATCH_ROWS == 0:
                on_progress(BATCH_ROWS)


def _jsonl(src: Path, dst: Path, ops: dict[str, CellFn], report: TransformReport,
           on_progress: Callable[[int], None] | None) -> None:  # fmt: skip
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for n, raw in enumerate(fi, start=1):
            if not raw.strip():
                continue
            where = f"{src}:{n}"
            try:
                rec = json.loads(raw)
            except ValueError:
                report.reject(where, "not valid JSON (line left out)")
                continue
            if not isinstance(rec, dict):
                report.reject(where, "not a JSON object (line left out)")
                continue
            for col, fn in ops.items():
                v = rec.get(col)
                if v is not None and v != "":
                    rec[col] = _apply(fn, str(v), where, col, report)
            fo.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
            report.rows += 1
            if on_progress and report.rows % BATCH_ROWS == 0:
                on_progress(BATCH_ROWS)


def _parquet(src: Path, dst: Path, ops: dict[str, CellFn], report: TransformReport,
             on_progress: Callable[[int], None] | None) -> None:  # fmt: skip
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(src)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(f"cannot read Parquet: {exc}", where=str(src)) from None
    schema = pf.schema_arrow
    _check_columns(list(ops), schema.names, str(src))
    out_schema = pa.schema([pa.field(f.name, pa.string()) if f.name in ops else f for f in schema])
    with pq.ParquetWriter(dst, out_schema) as writer:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            cols: list[Any] = []
            for name in schema.names:
                col = batch.column(name)
                fn = ops.get(name)
                if fn is not None:
                    values = col.to_pylist()
                    base = report.rows
                    col = pa.array(
                        [
                            None
                            if v is None or v == ""
                            else _apply(fn, str(v), f"{src}:row {base + i + 1}", name, report)
                            for i, v in enumerate(values)
                        ],
                        pa.string(),
                    )
                cols.append(col)
            writer.write_batch(pa.record_batch(cols, schema=out_schema))
            report.rows += batch.num_rows
            if on_progress:
                on_progress(batch.num_rows)


# --------------------------------------------------------------------------- cell functions


def pseudonymize_fn(tokenizer: Tokenizer, *, nir: bool = False) -> CellFn:
    """HMAC token; with ``nir``, values are normalised first (so every writing of one NIR gives
    one token) and invalid NIRs are rejected."""
    if not nir:
        return tokenizer.token
    return lambda v: tokenizer.token(ids.validate_nir(v))


def fpe_fn(fpe: NirFpe) -> CellFn:
    return fpe.tokenize


def encrypt_fn(cipher: CellCipher, column: str) -> CellFn:
    return lambda v: cipher.encrypt(column, v)


def decrypt_fn(cipher: CellCipher, column: str) -> CellFn:
    return lambda v: cipher.decrypt(column, v, where=f"column {column}")


def department_of(code: str) -> str:
    """Department of an INSEE commune code or a postal code (``2A004`` -> ``2A``,
    ``97105`` -> ``971``, ``75015`` -> ``75``; postal ``20xxx`` -> ``20``: Corsica)."""
    c = code.strip().upper()
    if len(c) != 5 or not c.isascii() or not (c.isdigit() or c[:2] in ("2A", "2B")):
        raise ids.IdentifierError("not a 5-character commune or postal code")
    return c[:3] if c[:2] in ("97", "98") else c[:2]


def birth_year(value: str) -> str:
    d = ids.parse_birth_date(value)
    if d is None:
        raise ids.IdentifierError("not a date of birth")
    return str(d.year)


def birth_month(value: str) -> str:
    d = ids.parse_birth_date(value)
    if d is None:
        raise ids.IdentifierError("not a date of birth")
    return f"{d.year}-{d.month:02d}"


def mask_nir(value: str) -> str:
    """Keep sex and year (the rest starred): ``2 95 ** ** *** *** **``."""
    nir = ids.validate_nir(value)
    return f"{nir[0]} {nir[1:3]} ** ** *** *** **"


MASKS: dict[str, CellFn] = {
    "mask": lambda v: ids.mask(v),
    "nir": mask_nir,
    "year": birth_year,
    "month": birth_month,
    "departement": department_of,
    "redact": lambda v: "",
}


def mask_fn(mode: str) -> CellFn:
    try:
        return MASKS[mode]
    except KeyError:
        raise InputError(f"unknown mask {mode!r}", hint=f"one of {', '.join(MASKS)}") from None


def parse_column_specs(specs: list[str], default: str | None = None) -> dict[str, str]:
    """``["nir:nir", "dob:year", "email"]`` -> ``{"nir": "nir", "dob": "year", "email": ...}``."""
    out: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            col, _, mode = item.strip().partition(":")
            if not col:
                continue
            if not mode and default is None:
                raise InputError(f"column {col!r} needs a mode: {col}:MODE")
            out[col] = mode or str(default)
    if not out:
        raise InputError("no column given", hint="--column NAME[:MODE]")
    return out


__all__ = ["KeyMaterialError", "transform_file"]
