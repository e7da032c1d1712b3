"""Find French personal identifiers where they should not be: files, archives, databases.

Files are read in fixed-size chunks cut at a line end (constant memory, whatever the size),
``.gz`` transparently; CSV/TSV and JSON values are located by column or key (which also act as
hints); Parquet and databases are scanned per column (databases sampled). Findings never keep
the value, only a masked sample.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rempart.errors import InputError
from rempart.protect import identifiers as ids
from rempart.protect.detector import DEFAULT_MIN_CONFIDENCE, Hit, detect, kinds_from_name

CHUNK_SIZE = 8 << 20
DB_SAMPLE_ROWS = 10_000
TEXT_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
                 ".ndjson": "json", ".parquet": "parquet"}  # fmt: skip


@dataclass(slots=True)
class Finding:
    source: str  # file path, or database URL without password
    kind: str
    confidence: float
    sample: str  # masked
    line: int | None = None
    column: int | None = None  # 1-based character column in the line
    field: str | None = None  # CSV column, JSON key, Parquet column, table.column
    rows: int = 1  # rows of a column holding this kind (Parquet, databases)
    allowed: bool = False

    @property
    def location(self) -> str:
        where = self.source
        if self.field and self.line is None:
            return f"{where}:{self.field}"
        return f"{where}:{self.line}" if self.line is not None else where


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source/field, kind)
    bytes_scanned: int = 0
    seconds: float = 0.0
    truncated: int = 0

    @property
    def reported(self) -> int:
        return sum(f.rows for f in self.findings if not f.allowed) + self.truncated

    def by_kind(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, kind), n in self.counts.items():
            out[kind] += n
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes_scanned,
            "seconds": round(self.seconds, 3),
            "findings": [asdict(f) | {"location": f.location} for f in self.findings],
            "truncated": self.truncated,
            "summary": {
                "by_kind": dict(self.by_kind()),
                "by_location": [
                    {"location": loc, "kind": kind, "count": n}
                    for (loc, kind), n in sorted(self.counts.items())
                ],
            },
        }


class AllowList:
    """Accepted locations, one per line: ``GLOB [KIND]`` (``#`` comments).

    ``GLOB`` matches the finding's source, ``source:field`` or ``source:line``
    (e.g. ``exports/*.csv:email``, ``sqlite:///*:users.telephone phone``).
    """

    def __init__(self, rules: Iterable[tuple[str, str | None]] = ()):
        self.rules = list(rules)

    @classmethod
    def load(cls, path: Path) -> AllowList:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read allow-list: {exc.strerror}", where=str(path)) from None
        rules: list[tuple[str, str | None]] = []
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) > 2:
                raise InputError("expected 'GLOB [KIND]'", where=f"{path}:{n}")
            rules.append((parts[0], parts[1] if len(parts) == 2 else None))
        return cls(rules)

    def allows(self, f: Finding) -> bool:
        names = [f.source, f.location]
        if f.field:
            names.append(f"{f.source}:{f.field}")
        return any(
            (kind is None or kind == f.kind) and any(fnmatch.fnmatchcase(n, glob) for n in names)
            for glob, kind in self.rules
        )


def _open(path: Path) -> IO[bytes]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None


def file_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return TEXT_SUFFIXES.get(suffixes[-1], "text") if suffixes else "text"


def iter_chunks(stream: IO[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Chunks of about ``size`` bytes, each ending at a line end (except a last partial line)."""
    rest = b""
    while True:
        block = stream.read(size)
        if not block:
            if rest:
                yield rest
            return
        data = rest + block
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            if len(rest) > 16 * size:  # one enormous line: scan it anyway, bounded memory
                yield rest
                rest = b""
            continue
        rest = data[cut + 1 :]
        yield data[: cut + 1]


class _FieldLocator:
    """Which CSV column or JSON key a byte position sits in (computed only for hits)."""

    def __init__(self, kind: str, header: list[str], delimiter: bytes):
        self.kind = kind
        self.header = header
        self.delimiter = delimiter
        self.hint_cache: dict[str, frozenset[str]] = {}
        self.last: tuple[int, str | None] = (-1, None)  # (position, field) of the last lookup

    def field_at(self, data: bytes, line_start: int, pos: int) -> str | None:
        prefix = data[line_start:pos]
        if self.kind == "csv":
            idx = prefix.count(self.delimiter)
            return self.header[idx] if idx < len(self.header) else f"#{idx + 1}"
        colon = prefix.rfind(b'":')
        if colon < 0:
            return None
        quote = prefix.rfind(b'"', 0, colon)
        return prefix[quote + 1 : colon].decode("utf-8", "replace") if quote >= 0 else None

    def hints(self, name: str | None) -> frozenset[str]:
        if name is None:
            return frozenset()
        got = self.hint_cache.get(name)
        if got is None:
            got = self.hint_cache[name] = kinds_from_name(name)
        return got


def _sniff_header(first: bytes) -> tuple[list[str], bytes]:
    line = first.split(b"\n", 1)[0].rstrip(b"\r")
    delimiter = max((b"\t", b";", b",", b"|"), key=line.count)
    return [h.strip().strip('"') for h in line.decode("utf-8", "replace").split(
        delimiter.decode())], delimiter  # fmt: skip


def scan_stream(
    stream: IO[bytes],
    source: str,
    kind: str = "text",
    *,
    chunk_size: int = CHUNK_SIZE,
    min_confidence: float = 0.0,
    detail: list[int] | None = None,
) -> Iterator[tuple[Finding, int]]:
    """Findings of a text-like stream, with the byte count of each chunk on the first one.

    ``detail``: a shared budget of findings to describe fully (line, column, masked sample);
    past it, findings only carry what the counts need (type, field), which is cheaper.
    """
    line_no = 1
    locator: _FieldLocator | None = None
    for chunk in iter_chunks(stream, chunk_size):
        if kind in ("csv", "json") and locator is None:
            header, delim = _sniff_header(chunk) if kind == "csv" else ([], b",")
            locator = _FieldLocator(kind, header, delim)
        hint_at: Callable[[int], frozenset[str]] | None = None
        if locator is not None:
            loc = locator

            def hint_at(pos: int, data: bytes = chunk, loc: _FieldLocator = loc) -> frozenset[str]:
                name = loc.field_at(data, data.rfind(b"\n", 0, pos) + 1, pos)
                loc.last = (pos, name)
                return loc.hints(name)

        last_pos, scanned = 0, len(chunk)
        for hit in detect(chunk, hint_at=hint_at):
            if hit.confidence < min_confidence:
                continue
            start = hit.start
            if detail is not None:
                if detail[0] <= 0:
                    field_name = None
                    if locator is not None:
                        field_name = locator.field_at(
                            chunk, chunk.rfind(b"\n", 0, start) + 1, start
                        )
                    yield (
                        Finding(source, hit.kind, hit.confidence, "", None, None, field_name),
                        scanned,
                    )
                    scanned = 0
                    continue
                detail[0] -= 1
            line_no += chunk.count(b"\n", last_pos, start)
            last_pos = start
            line_start = chunk.rfind(b"\n", 0, start) + 1
            prefix = chunk[line_start:start]
            column = len(prefix) if prefix.isascii() else len(prefix.decode("utf-8", "replace"))
            yield (
                Finding(
                    source,
                    hit.kind,
                    hit.confidence,
                    ids.mask(hit.value),
                    line_no,
                    column + 1,
                    None
                    if locator is None
                    else locator.last[1]
                    if locator.last[0] == start
                    else locator.field_at(chunk, line_start, start),
                ),
                scanned,
            )
            scanned = 0
        line_no += chunk.count(b"\n", last_pos)
        if scanned:
            yield Finding(source, "", 0.0, ""), scanned  # byte accounting only


def scan_values(values: Iterable[Any], source: str, name: str) -> Iterator[tuple[Finding, int]]:
    """Per-column scan (Parquet, databases): one finding per kind with the row count."""
    rows: Counter[str] = Counter()
    best: dict[str, Hit] = {}
    text = "\n".join("" if v is None else str(v).replace("\n", " ") for v in values)
    data = text.encode("utf-8")
    hints = kinds_from_name(name)
    line_of: dict[str, set[int]] = {}
    for hit in detect(data, hints):
        line = data.count(b"\n", 0, hit.start)
        line_of.setdefault(hit.kind, set()).add(line)
        if hit.kind not in best or hit.confidence > best[hit.kind].confidence:
            best[hit.kind] = hit
    for kind, lines in line_of.items():
        rows[kind] = len(lines)
    first = True
    for kind, hit in best.items():
        yield (
            Finding(source, kind, hit.confidence, ids.mask(hit.value), field=name, rows=rows[kind]),
            len(data) if first else 0,
        )
        first = False
    if first:
        yield Finding(source, "", 0.0, ""), len(data)


def scan_parquet(path: Path) -> Iterator[tuple[Finding, int]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(f"cannot read Parquet: {exc}", where=str(path)) from None
    per_column: dict[str, list[Finding]] = {}
    total = 0
    for rg in range(pf.num_row_groups):
        table = pf.read_row_group(rg)
        for name in table.column_names:
            for f, n in scan_values(table.column(name).to_pylist(), str(path), name):
                total += n
                if f.kind:
                    per_column.setdefault(name, []).append(f)
    for name, found in per_column.items():
        for kind in dict.fromkeys(f.kind for f in found):
            same = [f for f in found if f.kind == kind]
            top = max(same, key=lambda f: f.confidence)
            yield Finding(str(path), kind, top.confidence, top.sample, field=name,
                          rows=sum(f.rows for f in same)), 0  # fmt: skip
    yield Finding(str(path), "", 0.0, ""), total


def scan_database(url: str, sample_rows: int = DB_SAMPLE_ROWS) -> Iterator[tuple[Finding, int]]:
    """Sample each column of each table (first ``sample_rows`` rows) through SQLAlchemy."""
    from sqlalchemy import MetaData, create_engine, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        safe = make_url(url).render_as_string(hide_password=True)
        engine = create_engine(url)
        meta = MetaData()
        meta.reflect(bind=engine)
    except (SQLAlchemyError, ValueError) as exc:
        raise InputError(f"cannot open database: {type(exc).__name__}", where="--db") from None
    try:
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                rows = conn.execute(select(table).limit(sample_rows)).all()
                for i, col in enumerate(table.columns):
                    values = [r[i] for r in rows]
                    yield from scan_values(values, safe, f"{table.name}.{col.name}")
    except SQLAlchemyError as exc:
        raise InputError(f"cannot read database: {type(exc).__name__}", where=safe) from None
    finally:
        engine.dispose()


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        elif p.exists():
            yield p
        else:
            raise InputError("no such file or directory", where=str(p))


def scan(
    paths: Iterable[Path] = (),
    *,
    db_urls: Iterable[str] = (),
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    allow: AllowList | None = None,
    max_findings: int = 10_000,
    on_progress: Callable[[int], None] | None = None,
) -> ScanReport:
    """Scan files and databases; keep up to ``max_findings`` findings, count all of them."""
    report = ScanReport()
    started = time.perf_counter()
    detail = [max_findings]
    allow = allow or AllowList()

    def sources() -> Iterator[tuple[Finding, int]]:
        for path in iter_files(paths):
            kind = file_kind(path)
            if kind == "parquet":
                yield from scan_parquet(path)
            else:
                with _open(path) as stream:
                    try:
                        yield from scan_stream(stream, str(path), kind, detail=detail,
                                               min_confidence=min_confidence)  # fmt: skip
                    except (OSError, EOFError, gzip.BadGzipFile) as exc:
                        raise InputError(f"cannot read: {exc}", where=str(path)) from None
        for url in db_urls:
            yield from scan_database(url)

    counts = report.counts
    findings = report.findings
    for f, nbytes in sources():
        if nbytes:
            report.bytes_scanned += nbytes
            if on_progress:
                on_progress(nbytes)
        if not f.kind or f.confidence < min_confidence:
            continue
        if allow.rules and allow.allows(f):
            f.allowed = True
        counts[(f"{f.source}:{f.field}" if f.field else f.source, f.kind)] += f.rows
        if len(findings) < max_findings and f.sample:
            findings.append(f)
        elif not f.allowed:
            report.truncated += f.rows
    report.seconds = time.perf_counter() - started
    return report


def scan_bytes(
    data: bytes,
    kind: str = "text",
    source: str = "<memory>",
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> list[Finding]:
    """Convenience for tests and callers holding data in memory."""
    return [
        f
        for f, _ in scan_stream(io.BytesIO(data), source, kind)
        if f.kind and f.confidence >= min_confidence
    ]
