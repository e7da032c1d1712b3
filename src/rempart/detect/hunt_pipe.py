"""Decode in a child process while the engine runs in the parent (``rempart hunt --workers 2``).

The child is forked (no re-import, no pickling): it runs the same ``iter_batches`` as the serial
hunt, writes the quarantine exactly as the serial path does, and sends, per batch, only the
events the engine will be offered (``keep_actions``) as an Arrow IPC stream of record batches
over a pipe. Strings travel dictionary-encoded (nulls inside the dictionary), so the parent
rebuilds ``Event`` objects by indexing small Python lists; ``ts`` travels as float64, bit for
bit. When the stream ends the child writes a JSON status (counts, or the one-line error) on a
second pipe and exits; the parent reaps it in every case (no zombie) and kills it when
interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from rempart import errors
from rempart.events import DICT_FIELDS, INT_FIELDS, Column, Event, build_events
from rempart.gcpause import paused
from rempart.ingest.columnar import int_list, le_bytes
from rempart.ingest.service import IngestRequest

if TYPE_CHECKING:
    from rempart.detect.engine import Engine
    from rempart.ingest.pipeline import EventBatch

#: How each event attribute travels: ``ts`` as float64, ``INT_FIELDS`` as int64, every other
#: one as a dictionary-encoded string (``DICT_FIELDS``, in ``EVENT_FIELDS`` order).
_DICT = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [pa.field("ts", pa.float64())]
    + [pa.field(n, _DICT) for n in DICT_FIELDS]
    + [pa.field(n, pa.int64()) for n in INT_FIELDS]
)
#: Categories travel as one string (DataCategory values hold no such character).
_SEP = "\x1f"
_STATUS_LIMIT = 16_000
#: Pipe buffer asked for (the unprivileged maximum by default): about two batches in flight.
_PIPE_BYTES = 1 << 20
#: Chunks of the pipe the parent reads ahead (``_PIPE_BYTES`` each).
_PREFETCH_CHUNKS = 64


@dataclass
class DecodeTotals:
    """What the child read: the serial hunt's ``IngestStats`` figures the result needs."""

    lines: int = 0
    events: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    #: The file the quarantined lines went to (None: none, or no quarantine directory).
    quarantine_file: str | None = None
    #: Alerts of the child's engine (``Alert.to_dict`` form), when it ran part of the rules.
    alerts: list[dict[str, Any]] = field(default_factory=list)


def _dict_column(values: list[Any]) -> pa.DictionaryArray:
    seen: dict[Any, int] = {}
    put = seen.setdefault
    indices = [put(v, len(seen)) for v in values]
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, pa.int32()), pa.array(list(seen), pa.string())
    )


def encode_events(events: list[Event]) -> pa.RecordBatch:
    """Kept events of one batch -> one record batch of ``SCHEMA`` (file order)."""
    columns: list[pa.Array] = [pa.array([e.ts for e in events], pa.float64())]
    for name in DICT_FIELDS:
        if name == "categories":
            values: list[Any] = [_SEP.join(e.categories) for e in events]
        else:
            values = [getattr(e, name) for e in events]
        columns.append(_dict_column(values))
    for name in INT_FIELDS:
        columns.append(pa.array([getattr(e, name) for e in events], pa.int64()))
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def encode_batch(batch: EventBatch) -> pa.RecordBatch:
    """Kept events of one ``iter_batches`` batch -> one record batch of ``SCHEMA``.

    A chunk decoded column-wise (the combined format, no line needing the slow path) is sent
    from its columns (index arrays into lists of distinct values: already a dictionary
    encoding) without building an ``Event``; anything else goes through :func:`encode_events`.
    Same rows, same values, same order either way.
    """
    chunk = batch._chunk
    if chunk is None or chunk.slow_events or not len(chunk.rows):
        return encode_events(batch.events())
    mask = chunk._kept(batch.keep_actions)
    idx = chunk.idx if mask is None else {k: v.filter(mask) for k, v in chunk.idx.items()}

    def kept(arr: pa.Array) -> pa.Array:
        return arr if mask is None else arr.filter(mask)

    rows = kept(chunk.rows)
    n = len(rows)
    vals = chunk.vals

    def column(name: str, index: str) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            idx[index].cast(pa.int32()), pa.array(vals[name], pa.string())
        )

    def constant(value: str | None) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            pa.array([0] * n, pa.int32()), pa.array([value], pa.string())
        )

    if "org" in idx:  # the line's organisation, else the directory's (as ``chunk.events``)
        org, dir_org = vals["org"], vals["dir_org"]
        orgs = _dict_column(
            [
                org[o] or dir_org[d]
                for o, d in zip(int_list(idx["org"]), int_list(idx["user"]), strict=True)
            ]
        )
    else:
        orgs = column("dir_org", "user")
    categories = [_SEP.join(c) for c in vals["categories"]]
    by_name = {
        "ts": kept(chunk.ts),
        "source_ip": column("ip", "ip"),
        "action": column("action", "req"),
        "outcome": column("outcome", "code"),
        "user_name": column("user", "user"),
        "organization_id": orgs,
        "user_agent": column("ua", "ua"),
        "method": column("method", "req"),
        "path": column("path", "req"),
        "query": column("query", "req"),
        "session_id": column("sid", "sid") if "sid" in idx else constant(None),
        "beneficiary_token": column("token", "req"),
        "categories": pa.DictionaryArray.from_arrays(
            idx["code"].cast(pa.int32()), pa.array(categories, pa.string())
        ),
        "account_kind": column("kind", "user"),
        "source": constant(chunk.source),
        "status": kept(chunk.status).cast(pa.int64()),
        "bytes": kept(chunk.size).cast(pa.int64()),
        "line": pc.add(rows, pa.scalar(chunk.first_line, pa.int64())),
    }
    return pa.RecordBatch.from_arrays([by_name[f.name] for f in SCHEMA], schema=SCHEMA)


def decode_events(batch: pa.RecordBatch) -> list[Event]:
    """Inverse of :func:`encode_events`: the same events, same values, same order."""
    strings: list[Column] = []
    for name in DICT_FIELDS:
        col = batch.column(name)
        vals = col.dictionary.to_pylist()
        if name == "categories":
            vals = [tuple(v.split(_SEP)) if v else () for v in vals]
        strings.append((vals, le_bytes(col.indices, pa.int32())))
    return build_events(
        le_bytes(batch.column("ts"), pa.float64()),
        strings,
        [le_bytes(batch.column(name), pa.int64()) for name in INT_FIELDS],
    )


def _child(
    request: IngestRequest,
    keep: frozenset[str] | None,
    data_fd: int,
    status_fd: int,
    engine: Engine | None,
) -> int:
    """Body of the forked child: decode, stream the kept events (and run ``engine`` on them
    once sent), then report; exit status."""
    from rempart.ingest.pipeline import IngestStats
    from rempart.ingest.quarantine import Quarantine

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    status: dict[str, Any]
    code = 0
    stats = IngestStats(counts_only=True)
    try:
        with (
            os.fdopen(data_fd, "wb", buffering=1 << 20) as sink,
            pa.ipc.new_stream(sink, SCHEMA) as writer,
        ):
            quarantine = Quarantine(request.quarantine_dir)
            try:
                for batch in request.batches(quarantine, stats, keep_actions=keep):
                    writer.write_batch(
                        encode_batch(batch),
                        custom_metadata={"lines": str(stats.lines)},
                    )
                    if engine is not None:
                        engine.process_many(batch.events())
            finally:
                quarantine.close()
        status = {
            "lines": stats.lines,
            "events": stats.events,
            "quarantined": dict(quarantine.counts),
            "quarantine_file": str(quarantine.path) if quarantine.path else None,
        }
        if engine is not None:
            engine.flush()
            status["alerts"] = [a.to_dict() for a in engine.alerts.values()]
    except errors.RempartError as exc:
        status = {"error": type(exc).__name__, "message": exc.message}
        status.update(where=exc.where, hint=exc.hint)
        code = 2
    except BaseException as exc:  # reported to the parent, which raises it as one line
        status = {"crash": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        code = 1
    data = json.dumps(status).encode()
    if code:
        data = data[:_STATUS_LIMIT]
    with os.fdopen(status_fd, "wb") as out:
        out.write(data)
    return code


def _raise_child_failure(status: dict[str, Any], exit_status: int) -> None:
    if "error" in status:
        cls = getattr(errors, str(status["error"]), errors.RempartError)
        if not (isinstance(cls, type) and issubclass(cls, errors.RempartError)):
            cls = errors.RempartError
        raise cls(status["message"], where=status.get("where"), hint=status.get("hint"))
    if "crash" in status:
        raise errors.RempartError(f"hunt: the decoding process failed: {status['crash']}")
    if os.WIFSIGNALED(exit_status):
        how = f"was killed by signal {os.WTERMSIG(exit_status)}"
    else:
        how = f"exited with status {os.waitstatus_to_exitcode(exit_status)}"
    raise errors.RempartError(f"hunt: the decoding process {how} before finishing")


class _Prefetch(io.RawIOBase):
    """The data pipe, read ahead by a thread into a bounded queue of chunks.

    ``os.read`` releases the GIL, so the thread costs the engine almost nothing, and the child
    can send up to ``_PREFETCH_CHUNKS`` MiB ahead (a pipe holds at most 1 MiB, less than one
    batch): neither process waits for the other at each batch. The thread owns the file
    descriptor and closes it when the pipe ends or on :meth:`stop`.
    """

    def __init__(self, fd: int):
        super().__init__()
        self._queue: queue.Queue[bytes | OSError] = queue.Queue(_PREFETCH_CHUNKS)
        self._chunk = memoryview(b"")
        self._ended = False
        self._stopping = False
        self._thread = threading.Thread(target=self._pump, args=(fd,), daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        try:
            while not self._stopping:
                try:
                    data = os.read(fd, _PIPE_BYTES)
                except OSError as exc:
                    self._queue.put(exc)
                    return
                self._queue.put(data)
                if not data:
                    return
        finally:
            os.close(fd)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._chunk:
            if self._ended:
                return 0
            item = self._queue.get()
            if isinstance(item, OSError):
                raise item
            if not item:
                self._ended = True
                return 0
            self._chunk = memoryview(item)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def stop(self) -> None:
        """Let the thread finish (once the writer is gone the pipe ends) and wait for it."""
        self._stopping = True
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a ``put`` on a full queue
                while True:
                    self._queue.get_nowait()
            self._thread.join(0.05)


def _on_sigterm(_sig: int, _frame: FrameType | None) -> None:
    # Unwinds the parent wherever it is; closing this generator then kills the child.
    raise SystemExit(128 + signal.SIGTERM)


def piped_events(
    request: IngestRequest,
    keep: frozenset[str] | None,
    totals: DecodeTotals,
    on_batch: Callable[[int], None] | None = None,
    child_engine: Engine | None = None,
) -> Generator[list[Event], None, None]:
    """The kept events of the request's inputs, batch by batch, decoded in a forked child.

    ``child_engine`` (an engine over rules split off with
    :func:`rempart.detect.partition.split_rules`) runs in the child on the same events; its
    alerts come back in ``totals.alerts``. ``totals`` is filled when the iteration completes.
    A child error is raised here as the same ``RempartError`` the serial path raises; the child
    is always reaped, and killed if the consumer stops early or the process is interrupted
    (SIGINT, SIGTERM).
    """
    data_r, data_w = os.pipe()
    status_r, status_w = os.pipe()
    with contextlib.suppress(OSError, AttributeError):  # let the child run ahead (Linux)
        fcntl.fcntl(data_w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(data_r)
            os.close(status_r)
            code = _child(request, keep, data_w, status_w, child_engine)
        finally:
            os._exit(code)
    os.close(data_w)
    os.close(status_w)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    reaped = False
    status_open = True
    prefetch = _Prefetch(data_r)
    try:
        with io.BufferedReader(prefetch, 1 << 20) as source:
            stream_error: Exception | None = None
            try:
                reader = pa.ipc.open_stream(source)
                while True:
                    try:
                        batch, meta = reader.read_next_batch_with_custom_metadata()
                    except StopIteration:
                        break
                    with paused():  # many new objects, no cycles
                        events = decode_events(batch)
                    yield events
                    if on_batch is not None and meta is not None:
                        on_batch(int(meta[b"lines"]))
            except (pa.ArrowInvalid, OSError) as exc:  # truncated stream: the child died
                stream_error = exc
        status_open = False
        with os.fdopen(status_r, "rb") as status_in:
            raw = status_in.read()
        _, exit_status = os.waitpid(pid, 0)
        reaped = True
        status: dict[str, Any] = json.loads(raw) if raw else {}
        if "lines" not in status or stream_error is not None:
            _raise_child_failure(status, exit_status)
        totals.lines = int(status["lines"])
        totals.events = int(status["events"])
        totals.quarantined = {str(k): int(v) for k, v in status["quarantined"].items()}
        totals.quarantine_file = status.get("quarantine_file")
        totals.alerts = list(status.get("alerts", []))
    finally:
        if not reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        prefetch.stop()  # the child is gone: the pipe ends, the reading thread returns
        if status_open:
            os.close(status_r)
        if main:
            signal.signal(signal.SIGTERM, previous)
