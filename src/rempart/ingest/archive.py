"""Event archive: normalised events as Parquet, partitioned by day, readable with DuckDB.

Layout: ``DIR/day=YYYY-MM-DD/part-<run>-<seq>.parquet``. A part file never spans two days; it is
written to a temporary name, fsynced, then renamed, so a reader never sees half a file. In
follow mode each part file also carries, in its Parquet metadata, the read checkpoint of every
source as of that part: the newest part is the single commit record, so a crash between writing
events and saving a checkpoint cannot lose or duplicate a line (see ``rempart.ingest.follow``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from operator import attrgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rempart.errors import StoreError
from rempart.events import Event

CHECKPOINT_KEY = b"rempart.checkpoint"

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source_ip", pa.string()),
        pa.field("action", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("user_name", pa.string()),
        pa.field("organization_id", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("method", pa.string()),
        pa.field("path", pa.string()),
        pa.field("query", pa.string()),
        pa.field("status", pa.int32()),
        pa.field("bytes", pa.int64()),
        pa.field("session_id", pa.string()),
        pa.field("beneficiary_token", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("account_kind", pa.string()),
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
    ]
)
_CATEGORIES = pa.list_(pa.string())
_INT64_MAX = 2**63 - 1
_STRING_COLUMNS = [f.name for f in SCHEMA if f.type == pa.string()]
#: A typed scalar, not a Python float: pyarrow infers a Python value's type by trying to import
#: python-dateutil at each call (see ``rempart.ingest.columnar._lit``).
_MICROS_PER_DAY = pa.scalar(86_400_000_000.0, pa.float64())


def events_to_table(events: list[Event]) -> pa.Table:
    """Columnar form of events, with the archive schema."""
    cols: dict[str, Any] = {}
    micros = [round(t * 1_000_000) for t in map(attrgetter("ts"), events)]
    cols["ts"] = pa.array(micros, pa.int64()).cast(SCHEMA.field("ts").type)
    for name in _STRING_COLUMNS:
        cols[name] = pa.array(list(map(attrgetter(name), events)), pa.string())
    cols["status"] = pa.array(list(map(attrgetter("status"), events)), pa.int32())
    sizes: list[int] = list(map(attrgetter("bytes"), events))
    if sizes and max(sizes) > _INT64_MAX:  # not storable as int64: stored as null
        cols["bytes"] = pa.array([None if n > _INT64_MAX else n for n in sizes], pa.int64())
    else:
        cols["bytes"] = pa.array(sizes, pa.int64())
    cols["categories"] = pa.array(list(map(attrgetter("categories"), events)), _CATEGORIES)
    cols["line"] = pa.array(list(map(attrgetter("line"), events)), pa.int64())
    return pa.table([cols[f.name] for f in SCHEMA], schema=SCHEMA)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


class ArchiveWriter:
    """Buffers events and writes one part file per day and flush."""

    def __init__(
        self,
        directory: Path,
        *,
        flush_rows: int = 500_000,
        run: str | None = None,
        split_days: bool = True,
    ):
        """``split_days=False`` (follow mode): parts are cut only by :meth:`flush`, so that each
        part's checkpoint covers exactly its lines; a part then sits in the day of its first
        event and may hold a few late events of the next day (``ts`` stays authoritative)."""
        self.directory = directory
        self.split_days = split_days
        self.flush_rows = flush_rows
        self.run = run or datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self._seq = 0
        self._buf: list[pa.Table] = []
        self._buf_rows = 0
        self._day_index: int | None = None
        self._first_ts = 0.0
        self.rows_written = 0
        self.files: list[Path] = []
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create archive directory: {exc.strerror}", where=str(directory)
            ) from None

    def add(self, events: list[Event]) -> None:
        """Buffer events; parts are cut at (UTC) day boundaries and every ``flush_rows`` rows."""
        if events:
            days = [int(e.ts // 86400) for e in events]
            self._add(events_to_table(events), days, lambda i: events[i].ts)

    def add_table(self, table: pa.Table) -> None:
        """Same as :meth:`add` for events already in columnar form (``SCHEMA``): no ``Event``
        objects needed (the day of a row is that of its ``ts`` in microseconds)."""
        if not table.num_rows:
            return
        micros = table.column("ts").cast(pa.int64()).combine_chunks()
        days = pc.floor(pc.divide(micros.cast(pa.float64()), _MICROS_PER_DAY)).cast(pa.int64())
        self._add(table, days, lambda i: micros[i].as_py() / 1_000_000)

    def _add(
        self, table: pa.Table, days: list[int] | pa.Array, ts_of: Callable[[int], float]
    ) -> None:
        n = table.num_rows
        if not self.split_days:
            if not self._buf:
                self._first_ts = ts_of(0)
                self._day_index = days[0] if isinstance(days, list) else days[0].as_py()
            self._append(table)
            return
        # Runs of rows of the same day (rows stay in input order, as with events).
        if isinstance(days, list):
            cuts = [i for i in range(1, n) if days[i] != days[i - 1]]
            day_at = days.__getitem__
        else:
            changed = pc.not_equal(days.slice(1), days.slice(0, n - 1))
            cuts = [i + 1 for i in pc.indices_nonzero(changed).to_pylist()]
            day_at = lambda i: days[i].as_py()  # noqa: E731
        bounds = [0, *cuts, n]
        for start, end in pairwise(bounds):
            day = day_at(start)
            if self._buf and day != self._day_index:
                self._write(checkpoint=None)
            if not self._buf:
                self._day_index = day
            while start < end:
                if not self._buf:
                    self._first_ts = ts_of(start)
                take = min(end - start, self.flush_rows - self._buf_rows)
                self._append(table.slice(start, take))
                start += take
                if self._buf_rows >= self.flush_rows:
                    self._write(checkpoint=None)

    def _append(self, table: pa.Table) -> None:
        self._buf.append(table)
        self._buf_rows += table.num_rows

    def flush(self, checkpoint: dict[str, Any] | None = None) -> Path | None:
        """Write what is buffered (and, with a checkpoint, an empty part if nothing is)."""
        if not self._buf and checkpoint is None:
            return None
        return self._write(checkpoint=checkpoint)

    def _write(self, *, checkpoint: dict[str, Any] | None) -> Path:
        tables, self._buf = self._buf, []
        rows, self._buf_rows = self._buf_rows, 0
        if tables:
            table = pa.concat_tables(tables).combine_chunks()
            day = _day(self._first_ts)
        else:
            table = events_to_table([])
            day = _day(86400.0 * (self._day_index or 0))
        meta = {b"rempart.run": self.run.encode()}
        if checkpoint is not None:
            meta[CHECKPOINT_KEY] = json.dumps(checkpoint, sort_keys=True).encode()
        table = table.replace_schema_metadata(meta)
        self._seq += 1
        folder = self.directory / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{self.run}-{self._seq:06d}.parquet"
        tmp = final.with_suffix(".parquet.tmp")
        # Imported on use: with pyarrow.fs, 37 ms of the start-up of every command that imports
        # the ingest package (``-X importtime``), 25M of the 1.5G instructions of a small hunt.
        import pyarrow.parquet as pq

        try:
            with tmp.open("wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise StoreError(
                f"cannot write archive part: {exc.strerror}", where=str(final)
            ) from None
        self.rows_written += rows
        self.files.append(final)
        return final

    def close(self) -> None:
        if self._buf:
            self._write(checkpoint=None)


def part_files(directory: Path) -> list[Path]:
    """Every committed part file, oldest first (run timestamp then sequence)."""
    return sorted(directory.glob("day=*/part-*.parquet"), key=lambda p: p.name)


def latest_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The checkpoint of the newest part file that carries one."""
    import pyarrow.parquet as pq  # on use (see ArchiveWriter._write)

    for path in reversed(part_files(directory)):
        meta = pq.read_schema(path).metadata or {}
        if CHECKPOINT_KEY in meta:
            data: dict[str, Any] = json.loads(meta[CHECKPOINT_KEY])
            return data
    return None
