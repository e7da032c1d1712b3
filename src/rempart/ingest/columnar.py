"""Columnar decode of the combined log format: a whole chunk at a time with pyarrow compute.

A chunk of raw bytes is cut into its ``"``-separated fields, one column per field: by Arrow's
CSV tokenizer (``"`` as the delimiter, no quoting) when the chunk is plain (valid UTF-8, no
carriage return, no blank line), else by splitting the lines then each line on ``"``.
Vectorised kernels (byte slices at fixed places, equality, length and ASCII-digit checks,
dictionary encoding) select the lines that have the plain shape of the format and cut them into
columns; what varies little (``ip ident user``, the minute and the second of the time, `` 200 ``)
is checked once per distinct value. Python then runs once per
DISTINCT value of a column (request target, account, time string, user agent...), never once
per line: route matching, beneficiary tokenisation, NIR redaction and directory lookups are all
per distinct value, mapped back to the rows by dictionary indices.

A line takes the columnar path only when its shape leaves no doubt (no backslash, the expected
number of quoted fields, plain separators, digits where digits belong); every other non-blank
line (escaped quotes, malformed, too long, bad UTF-8, impossible time...) goes through the
reference per-line decoder, so quarantine reasons, line numbers and events are exactly those of
the reference path. ``Event`` objects are only built on demand, and only for the actions asked.
"""

from __future__ import annotations

import array
import re
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, BinaryIO, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rempart.errors import InputError
from rempart.events import Event
from rempart.gcpause import paused
from rempart.ingest.archive import SCHEMA, events_to_table
from rempart.ingest.distinct import (
    account_columns,
    add_present,
    combined_events,
    cut_heads,
    info_columns,
    present_values,
)
from rempart.ingest.normalise import Normalizer, RequestInfo
from rempart.ingest.parsers import ClfTimeParser, Reject
from rempart.ingest.routes import Route

#: `` status bytes `` between the request and the referer: `` 200 `` (checked once per distinct
#: value), then 1 to 18 digits (small enough for int64) or ``-``, then a space.
_STATUS = re.compile(rb" [0-9]{3} ")
_SIZE_DIGITS = 18
_CATEGORIES = pa.list_(pa.string())
_TS_TYPE = SCHEMA.field("ts").type
#: What precedes the first quote of a line is ``ip ident user [time] ``, the time in its strict
#: 26-character form ``dd/Mon/yyyy:HH:MM:SS +zzzz`` (any other form is left to the reference
#: path): `` [time] `` is its last 30 bytes.
_PREFIX_END_CHARS = 30
#: The end of the prefix without the seconds (``:SS`` is 17-20 in the time).
_MINUTE_END = re.compile(
    rb" \[([0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}):( [+-][0-9]{4})\] "
)
#: Seconds 00 to 60 (a leap second is accepted as the next minute, as by ClfTimeParser).
_SECONDS = re.compile(rb"[0-5][0-9]|60")
_LINE = attrgetter("line")
_ACTION = attrgetter("action")

_NO_REQUEST = RequestInfo(
    Route("none", "", None, None, frozenset(), frozenset(), (), False), "", "", None, None
)

#: Called for a line the columnar path does not take: (source, line number, raw, complete).
SlowDecoder = Callable[[str, int, bytes, bool], list[Event]]


def _machine_bytes(arr: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> memoryview:
    """The values of an array without nulls as ``kind``, the bytes of its Arrow buffer in the
    machine's order (no copy when the array is one chunk of that type already)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != kind:
        arr = arr.cast(kind)
    buf = arr.buffers()[1]
    if buf is None:
        return memoryview(b"")
    width = kind.bit_width // 8
    return memoryview(buf)[arr.offset * width : (arr.offset + len(arr)) * width]


def int_list(arr: pa.Array | pa.ChunkedArray) -> list[int]:
    """Python ints of an integer array without nulls (through the buffer protocol: fast)."""
    ints: list[int] = _machine_bytes(arr, pa.int32()).cast("i").tolist()
    return ints


#: ``array`` type codes of the fixed-width types :func:`le_bytes` gives.
_ARRAY_CODES: Final = {pa.int32(): "i", pa.int64(): "q", pa.float64(): "d"}


def le_bytes(arr: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> bytes:
    """The values of an array without nulls as ``kind`` (int32, int64 or float64), in
    little-endian bytes: what :func:`rempart.ingest.distinct.combined_events` and
    :func:`rempart.events.build_events` read."""
    raw = _machine_bytes(arr, kind)
    if sys.byteorder == "little":  # Arrow's buffers are in the machine's order
        return raw.tobytes()
    swapped = array.array(_ARRAY_CODES[kind], raw.tobytes())
    swapped.byteswap()
    return swapped.tobytes()


_LITERAL_TYPES: Final = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
_LITERALS: dict[tuple[type, object], pa.Scalar] = {}


def _lit(value: bool | int | float | str) -> pa.Scalar:
    """``value`` as the Arrow scalar pyarrow would infer for it (cached). A Python value passed
    to a compute function has its type inferred, and pyarrow's inference tries to import
    python-dateutil each time: when it is not installed the import fails, is not cached, and
    costs 0.1-0.15 ms (a search of ``sys.path``), 11 times per chunk."""
    key = (type(value), value)
    got = _LITERALS.get(key)
    if got is None:
        got = _LITERALS[key] = pa.scalar(value, _LITERAL_TYPES[type(value)])
    return got


def _arange(n: int) -> pa.Array:
    """0, 1... n - 1 (int64)."""
    return pc.indices_nonzero(pa.repeat(_lit(True), n)).cast(pa.int64())


def _retyped(arr: pa.Array, small: pa.DataType, large: pa.DataType) -> pa.Array:
    """The same bytes seen as strings or as binary (``large`` for 64-bit offsets)."""
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    return arr.view(large if wide else small)


def _whole(block: memoryview, kind: pa.DataType) -> pa.Array:
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(block)))
    return pa.Array.from_buffers(kind, 1, [None, offsets, pa.py_buffer(block)])


@dataclass(slots=True)
class Block:
    """Whole lines joined by ``\\n`` (no final newline), as a view into a reused buffer: valid
    until the next block is read. ``complete`` is False when the last line had no newline."""

    data: memoryview
    complete: bool
    has_backslash: bool
    #: No carriage return and no blank last line: the lines can be cut by Arrow's CSV
    #: tokenizer (which also ends a line at a lone ``\r`` and drops a final empty line).
    plain: bool = False

    def lines(self) -> list[bytes]:
        return bytes(self.data).split(b"\n")


def iter_blocks(stream: BinaryIO, *, where: str, chunk_size: int) -> Iterator[Block]:
    """The same lines as :func:`rempart.ingest.sources.iter_line_chunks`, read into one
    reused buffer (no new bytes object per chunk: on this path, copies and page faults of fresh
    4 MiB objects cost more than the decoding of some kinds of lines)."""
    buf = bytearray(max(chunk_size, 1))
    start = 0  # pending bytes (an unfinished line) at buf[:start]
    while True:
        if start == len(buf):  # a line longer than the buffer: grow it
            bigger = bytearray(2 * len(buf))
            bigger[:start] = buf
            buf = bigger
        try:
            got = stream.readinto(memoryview(buf)[start:])  # type: ignore[attr-defined]
        except (OSError, EOFError) as exc:
            raise InputError(
                f"cannot read (corrupt or truncated archive?): {exc}", where=where
            ) from None
        except Exception as exc:  # zstandard.ZstdError
            if type(exc).__module__.startswith("zstandard"):
                raise InputError(
                    f"cannot read (corrupt or truncated archive?): {exc}", where=where
                ) from None
            raise
        if not got:
            break
        end = start + got
        cut = buf.rfind(b"\n", 0, end)
        if cut < 0:
            start = end
            continue
        yield _block(buf, cut, True)
        start = end - cut - 1
        buf[:start] = buf[cut + 1 : end]
    if start:
        yield _block(buf, start, False)


def _block(buf: bytearray, end: int, complete: bool) -> Block:
    plain = end > 0 and buf[end - 1] != 0x0A and buf.find(b"\r", 0, end) < 0
    return Block(memoryview(buf)[:end], complete, buf.find(b"\\", 0, end) >= 0, plain)


@dataclass(slots=True)
class _Split:
    """A block cut into lines and, for the candidate lines of the columnar path (``width``
    fields between quotes, not too long, no backslash, valid UTF-8), into fields."""

    lines: int
    #: Fields per candidate line.
    width: int
    #: Line (index in the block) of each candidate.
    rows: pa.Array
    #: ``part(j)``: field ``j`` of each candidate (a string array aligned with ``rows``).
    part: Callable[[int], pa.Array]
    #: Per candidate: fields 4, 6... are one space and the last one is empty.
    plain_separators: pa.Array
    #: Per line: blank (None when the block has no blank line).
    blank: pa.Array | None
    #: ``raw(lines)``: the bytes of those lines (indices in the block, ascending).
    raw: Callable[[list[int]], list[bytes]]


def _plain_separators(part: Callable[[int], pa.Array], width: int) -> pa.Array:
    ok = pc.equal(pc.binary_length(part(width - 1)), _lit(0))
    for j in range(4, width - 1, 2):
        ok = pc.and_(ok, pc.equal(part(j), _lit(" ")))
    return ok


def _sample_width(data: memoryview, sample: int = 1 << 15) -> int:
    """The most common number of ``"``-separated fields in the first lines of ``data``."""
    head = bytes(data[:sample])
    lines = head.split(b"\n")
    if len(head) == sample and len(lines) > 1:
        lines.pop()  # cut
    counts = Counter(line.count(b'"') + 1 for line in lines)
    return counts.most_common(1)[0][0]


_UTF8_BOM = b"\xef\xbb\xbf"


def _split_fields(block: Block, max_chars: int) -> _Split | None:
    """Cut a plain block (see ``Block.plain``) with Arrow's CSV tokenizer, ``"`` as the
    delimiter and no quoting: one pass, each field its own column, no list array of parts.
    None when the block is not plain, not UTF-8, or its lines have no usable width (the
    general :func:`_split_lines` then applies)."""
    data = block.data
    if not block.plain or data[:3] == _UTF8_BOM:  # the CSV reader would drop a BOM
        return None
    width = _sample_width(data)
    if width < 7 or width % 2 == 0:
        return None
    try:
        _whole(data, pa.large_binary()).cast(pa.large_string())  # UTF-8 check of the block
    except pa.ArrowInvalid:
        return None
    invalid: dict[int, str] = {}  # line (from 1) -> text, of the lines with another width

    def other_width(row: pacsv.InvalidRow) -> str:
        if row.number is not None:
            invalid[row.number] = row.text
        return "skip"

    names = [str(j) for j in range(width)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=names, block_size=len(data) + 1
            ),
            parse_options=pacsv.ParseOptions(
                delimiter='"',
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=other_width,
                quote_char=False,
                double_quote=False,
                escape_char=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    cols = [table.column(j).combine_chunks() for j in range(width)]
    lengths = pc.binary_length(cols[0])
    for col in cols[1:]:
        lengths = pc.add(lengths, pc.binary_length(col))
    rows_n = len(lengths)
    n = rows_n + len(invalid)
    # A blank line is a row of empty fields, as is a line of bare quotes: no telling them
    # apart here. And every byte must be accounted for (no line the tokenizer did not number).
    total = (pc.sum(lengths).as_py() or 0) + rows_n * (width - 1) + n - 1
    total += sum(len(text.encode("utf-8")) for text in invalid.values())
    if total != data.nbytes or (rows_n and pc.min(lengths).as_py() == 0):
        return None
    row_lines = _arange(n)
    if invalid:
        skipped = pa.array([number - 1 for number in invalid], pa.int64())
        row_lines = row_lines.filter(pc.invert(pc.is_in(row_lines, value_set=skipped)))
    cand = pc.less_equal(lengths, _lit(max_chars - (width - 1)))
    if block.has_backslash:
        for col in cols:
            cand = pc.and_(cand, pc.invert(pc.match_substring(col, "\\")))
    every = bool(pc.all(cand).as_py())
    rows = row_lines if every else row_lines.filter(cand)
    picked: dict[int, pa.Array] = {}

    def part(j: int) -> pa.Array:
        got = picked.get(j)
        if got is None:
            got = picked[j] = (cols[j] if every else cols[j].filter(cand)).view(pa.string())
        return got

    def raw(lines: list[int]) -> list[bytes]:
        row_of = {line: k for k, line in enumerate(int_list(row_lines))}
        out: list[bytes] = []
        for line in lines:
            text = invalid.get(line + 1)
            if text is not None:
                out.append(text.encode("utf-8"))
            else:
                k = row_of[line]
                out.append(b'"'.join(col[k].as_py() for col in cols))
        return out

    return _Split(n, width, rows, part, _plain_separators(part, width), None, raw)


def _split_lines(block: Block, max_chars: int) -> _Split:
    """Cut any block: lines (a lone ``\\r`` before the newline dropped), then fields."""
    bad_utf8: pa.Array | None = None
    try:
        whole = _whole(block.data, pa.large_binary()).cast(pa.large_string())
        lines = pc.split_pattern(whole, "\n").flatten()
    except pa.ArrowInvalid:
        texts: list[str] = []
        bad: list[bool] = []
        for raw_line in block.lines():
            try:
                texts.append(raw_line.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                texts.append("")
                bad.append(True)
        lines = pa.array(texts, pa.large_string())
        bad_utf8 = pa.array(bad, pa.bool_())
    original = lines
    cr = pc.ends_with(lines, "\r")
    if pc.any(cr).as_py():
        lines = pc.if_else(cr, pc.utf8_slice_codeunits(lines, 0, -1), lines)
    lengths = pc.binary_length(lines)
    blank = pc.equal(lengths, _lit(0))
    if bad_utf8 is not None:
        blank = pc.and_(blank, pc.invert(bad_utf8))
    parts = pc.split_pattern(lines, '"')
    nparts = pc.list_value_length(parts)
    expected = pc.mode(nparts, 1)
    width = expected[0]["mode"].as_py() if len(expected) else 0
    cand = pc.and_(pc.equal(nparts, width), pc.less_equal(lengths, max_chars))
    if width < 7 or width % 2 == 0:
        cand = pc.and_(cand, pa.scalar(False))
    if block.has_backslash:
        cand = pc.and_(cand, pc.invert(pc.match_substring(lines, "\\")))
    if bad_utf8 is not None:
        cand = pc.and_(cand, pc.invert(bad_utf8))
    rows = pc.indices_nonzero(cand).cast(pa.int64())
    base = pc.take(parts.offsets, rows)
    flat = parts.values

    def part(j: int) -> pa.Array:
        return flat.take(pc.add(base, j))

    def raw(picked: list[int]) -> list[bytes]:
        if bad_utf8 is None:
            texts = original.take(pa.array(picked, pa.int64())).to_pylist()
            return [text.encode("utf-8") for text in texts]
        pieces = block.lines()
        return [pieces[r] for r in picked]

    if len(rows):
        # Separators and the empty tail compared once over all the parts, then picked per
        # row (cheaper than picking the strings and comparing them).
        space = pc.equal(flat, _lit(" "))
        ok = pc.equal(pc.binary_length(flat), _lit(0)).take(pc.add(base, _lit(width - 1)))
        for j in range(4, width - 1, 2):
            ok = pc.and_(ok, space.take(pc.add(base, j)))
    else:
        ok = pa.array([], pa.bool_())
    return _Split(len(lines), width, rows, part, ok, blank, raw)


class ColumnarChunk:
    """The decoded lines of one chunk: columns for the plain lines, events for the others.

    Columnar rows are described by ``ts`` (float seconds) and, per column, an index array into
    a list of distinct values: ``req`` (action, method, path, query, token per distinct request),
    ``code`` (outcome, categories per distinct route/status/token), ``p2`` (status, bytes),
    ``user`` (account, kind, directory organisation), ``ip``, ``ua``, ``sid``, ``org``.
    """

    def __init__(self, source: str, first_line: int):
        self.source = source
        self.first_line = first_line
        self.lines = 0  # lines in the block (events, blank, quarantined)
        self.rows: pa.Array = pa.array([], pa.int64())  # row in chunk of each columnar event
        self.ts: pa.Array = pa.array([], pa.float64())
        self.status: pa.Array = pa.array([], pa.int64())
        self.size: pa.Array = pa.array([], pa.int64())
        self.idx: dict[str, pa.Array] = {}
        self.vals: dict[str, list[Any]] = {}
        self.slow_events: list[Event] = []

    def __len__(self) -> int:
        return len(self.rows) + len(self.slow_events)

    # -- statistics ---------------------------------------------------------------------
    def observe_into(
        self,
        actions: Counter[str],
        outcomes: Counter[str],
        accounts: set[str],
        beneficiaries: set[str],
    ) -> tuple[float, float] | None:
        """Add the columnar rows to the counters; (first, last) time or None when empty."""
        if not len(self.rows):
            return None
        vals = self.vals
        for name, into in (("action", actions), ("outcome", outcomes)):
            counted = pc.value_counts(self.idx["req" if name == "action" else "code"])
            labels = vals[name]
            for k, c in zip(
                int_list(counted.field("values")), counted.field("counts").to_pylist(), strict=True
            ):
                into[labels[k]] += c
        discloses = pa.array([bool(c) for c in vals["categories"]], pa.bool_())
        read = self.idx["req"].filter(pc.take(discloses, self.idx["code"]))
        tokens = vals["token"]
        add_present(beneficiaries, tokens, int_list(pc.unique(read)))
        add_present(accounts, vals["user"], int_list(pc.unique(self.idx["user"])))
        span = pc.min_max(self.ts)
        return span["min"].as_py(), span["max"].as_py()

    # -- events -------------------------------------------------------------------------
    def _kept(self, keep: frozenset[str] | None) -> pa.Array | None:
        """Mask over the columnar rows of the actions kept (None: all rows)."""
        if keep is None or not len(self.rows):
            return None
        flags = pa.array([a in keep for a in self.vals["action"]], pa.bool_())
        return pc.take(flags, self.idx["req"])

    def count_kept(self, keep: frozenset[str] | None) -> int:
        mask = self._kept(keep)
        fast = len(self.rows) if mask is None else pc.sum(mask).as_py() or 0
        slow = len(self.slow_events)
        if keep is not None:
            slow = sum(1 for e in self.slow_events if e.action in keep)
        return int(fast) + slow

    def events(self, keep: frozenset[str] | None = None) -> list[Event]:
        slow = self.slow_events
        if keep is not None:
            slow = [e for e in slow if e.action in keep]
        if not len(self.rows):
            return slow
        mask = self._kept(keep)
        idx = self.idx if mask is None else {k: v.filter(mask) for k, v in self.idx.items()}
        rows = self.rows if mask is None else self.rows.filter(mask)
        ts = self.ts if mask is None else self.ts.filter(mask)
        status = self.status if mask is None else self.status.filter(mask)
        size = self.size if mask is None else self.size.filter(mask)
        cols = {name: le_bytes(arr, pa.int32()) for name, arr in idx.items()}
        # Line numbers added by Arrow (a Python loop over every row before).
        lines = pc.add(rows.cast(pa.int64()), pa.scalar(self.first_line, pa.int64()))
        with paused():  # many new objects, no cycles: collections here are pure overhead
            fast = combined_events(
                self.vals,
                cols,
                le_bytes(ts, pa.float64()),
                le_bytes(status, pa.int32()),
                le_bytes(size, pa.int64()),
                self.source,
                le_bytes(lines, pa.int64()),
            )
        if slow:
            fast.extend(slow)
            fast.sort(key=_LINE)
        return fast

    def table(self) -> pa.Table:
        """Every event of the chunk (whatever ``keep``), with the archive schema, file order."""
        n = len(self.rows)
        if not n:
            return events_to_table(self.slow_events)
        idx = self.idx
        vals = self.vals

        def strings(name: str, index: str) -> pa.Array:
            return pc.take(pa.array(vals[name], pa.string()), idx[index])

        orgs = strings("dir_org", "user")
        if "org" in idx:
            orgs = pc.coalesce(strings("org", "org"), orgs)
        # ts is whole seconds here (the combined format): micros are exact.
        micros = pc.multiply(self.ts, _lit(1_000_000.0)).cast(pa.int64())
        cols = {
            "ts": micros.cast(_TS_TYPE),
            "source_ip": strings("ip", "ip"),
            "action": strings("action", "req"),
            "outcome": strings("outcome", "code"),
            "user_name": strings("user", "user"),
            "organization_id": orgs,
            "user_agent": strings("ua", "ua"),
            "method": strings("method", "req"),
            "path": strings("path", "req"),
            "query": strings("query", "req"),
            "status": self.status.cast(pa.int32()),
            "bytes": self.size,
            "session_id": strings("sid", "sid") if "sid" in idx else pa.nulls(n, pa.string()),
            "beneficiary_token": strings("token", "req"),
            "categories": pc.take(pa.array(vals["categories"], _CATEGORIES), idx["code"]),
            "account_kind": strings("kind", "user"),
            "source": pa.repeat(pa.scalar(self.source, pa.string()), n),
            "line": pc.add(self.rows, pa.scalar(self.first_line, pa.int64())),
        }
        table = pa.table([cols[f.name] for f in SCHEMA], schema=SCHEMA)
        if self.slow_events:
            table = pa.concat_tables([table, events_to_table(self.slow_events)])
            table = table.take(pc.sort_indices(table.column("line")))
        return table


def _per_distinct(arr: pa.Array, fn: Callable[[Any], Any], kind: pa.DataType) -> pa.Array:
    """``fn`` of each value of ``arr`` (None: null), called once per distinct value."""
    enc = arr.dictionary_encode()
    return pc.take(pa.array([fn(v) for v in enc.dictionary.to_pylist()], kind), enc.indices)


def _status(head: bytes) -> int | None:
    return int(head[1:4]) if _STATUS.fullmatch(head) else None


def _second(digits: bytes) -> float | None:
    return float(digits) if _SECONDS.fullmatch(digits) else None


def _status_and_size(p2: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """`` status bytes `` -> status (int64), bytes (its text) and whether the field has that
    shape, per row."""
    heads = pc.binary_slice(_retyped(p2, pa.binary(), pa.large_binary()), 0, 5)
    status = _per_distinct(heads, _status, pa.int64())
    size = pc.utf8_slice_codeunits(p2, 5, -1)
    digits = pc.and_(
        pc.ascii_is_decimal(size), pc.less_equal(pc.binary_length(size), _lit(_SIZE_DIGITS))
    )
    good = pc.and_(pc.or_(digits, pc.equal(size, _lit("-"))), pc.ends_with(p2, " "))
    return status, size, pc.and_(good, pc.is_valid(status))


_INT32_ONE: Final = pa.scalar(1, pa.int32())
_INT32_MINUS_ONE: Final = pa.scalar(-1, pa.int32())
#: The shape ``distinct.cut_heads`` cuts (three fields, none empty, one space apart), named and
#: anchored for ``pc.extract_regex`` (RE2, where ``[^ ]`` matches what it matches in ``re``:
#: any character but a space; a property test holds the two equal).
_HEAD_FIELDS: Final = r"^(?P<ip>[^ ]+) [^ ]+ (?P<user>[^ ]+)$"


def _split_heads(
    heads: pa.DictionaryArray,
) -> tuple[pa.Array, pa.Array, pa.Array, list[str | None], list[str | None]]:
    """``ip ident user`` (dictionary-encoded bytes) -> per row, the ip's and the user's
    numbers (int32; 0 for a head without that shape) and whether the head has that shape; and
    the ips and users so numbered (from 1, in the order of the distinct heads), as Python
    lists. Each distinct head is cut once, by Arrow (RE2): a compiled loop over the heads
    (``distinct.cut_heads``, which a cache across chunks did not speed up) took 2.4 to 2.5 s of
    the 10M-line log against 0.8 to 0.9 s this way. Heads that are not valid UTF-8 go through that
    loop, which sets aside only the invalid ones."""
    at = heads.indices
    try:
        text = heads.dictionary.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8 (a cut inside a character)
        ip_of, user_of, good, ips, users = cut_heads(heads.dictionary.to_pylist())
        return (
            pc.take(pa.array(ip_of, pa.int32()), at),
            pc.take(pa.array(user_of, pa.int32()), at),
            pc.take(pa.array(good, pa.bool_()), at),
            ips,
            users,
        )
    cut = pc.extract_regex(text, _HEAD_FIELDS)  # null where the head has not that shape
    # (``flatten``, not ``field``: a field alone would not be null where the struct is)
    ip_enc, user_enc = (pc.dictionary_encode(f) for f in cut.flatten())

    def numbers(enc: pa.DictionaryArray) -> pa.Array:
        return pc.take(pc.add(pc.fill_null(enc.indices, _INT32_MINUS_ONE), _INT32_ONE), at)

    return (
        numbers(ip_enc),
        numbers(user_enc),
        pc.take(cut.is_valid(), at),
        [None, *ip_enc.dictionary.to_pylist()],
        [None, *user_enc.dictionary.to_pylist()],
    )


class ColumnarDecoder:
    """Decodes blocks of combined-format lines for one run (caches persist across blocks)."""

    def __init__(
        self,
        normalizer: Normalizer,
        time_parser: ClfTimeParser,
        *,
        max_line_bytes: int,
    ):
        self.normalizer = normalizer
        self.parse_time = time_parser
        self.max_chars = max_line_bytes // 4
        trailing = normalizer.profile.trailing_fields
        self._session_at = trailing.index("session_id") if "session_id" in trailing else -1
        self._org_at = trailing.index("organization_id") if "organization_id" in trailing else -1
        #: Routes met so far, numbered (a route and a status make the outcome).
        self._routes: list[Route] = []
        self._route_no: dict[int, int] = {}

    def decode(
        self,
        source: str,
        first_line: int,
        block: Block,
        slow: SlowDecoder,
    ) -> ColumnarChunk:
        """Decode one block (``len(chunk.lines)`` lines from ``first_line``)."""
        chunk = ColumnarChunk(source, first_line)
        split = _split_fields(block, self.max_chars) or _split_lines(block, self.max_chars)
        n = chunk.lines = split.lines
        if len(split.rows):
            self._columns(chunk, split)
        # Everything else that is not blank: the reference path, in file order.
        others: list[int] = []
        if len(chunk.rows) < n:
            left = pc.invert(pc.is_in(_arange(n), value_set=chunk.rows))
            if split.blank is not None:
                left = pc.and_(left, pc.invert(split.blank))
            others = int_list(pc.indices_nonzero(left))
        if others:
            complete = block.complete
            last = n - 1
            for r, raw in zip(others, split.raw(others), strict=True):
                chunk.slow_events += slow(source, first_line + r, raw, complete or r != last)
        return chunk

    def _times(self, p0: pa.Array) -> tuple[pa.Array, pa.Array]:
        """Epoch seconds of each prefix (bytes) and whether its end is `` [time] `` with the
        time in its strict 26-character form and accepted by ``ClfTimeParser``."""
        # `` [dd/Mon/yyyy:HH:MM:`` + `` +zzzz] ``: the end without the seconds.
        ends = pc.binary_replace_slice(pc.binary_slice(p0, -_PREFIX_END_CHARS), 20, 22, "")
        ts = pc.add(
            _per_distinct(ends, self._minute, pa.float64()),
            _per_distinct(pc.binary_slice(p0, -10, -8), _second, pa.float64()),
        )
        return ts, pc.is_valid(ts)

    def _minute(self, end: bytes) -> float | None:
        m = _MINUTE_END.fullmatch(end)
        if m is None:
            return None
        try:  # the parser's minute key: the time without its seconds
            return self.parse_time.minute(m.group(1).decode() + m.group(2).decode())
        except Reject:
            return None

    def _columns(self, chunk: ColumnarChunk, split: _Split) -> None:
        """Columns of the candidate rows of ``split``."""
        part = split.part
        ok = split.plain_separators
        rows = split.rows
        width = split.width
        status, size, good = _status_and_size(part(2))
        ok = pc.and_(ok, good)
        # The prefix is cut by bytes at fixed places from its end: `` [`` + time + ``] `` is its
        # last 30 bytes, checked (and the time parsed) once per distinct minute and per distinct
        # second; ``ip ident user`` before it once per distinct value. A row whose end is not
        # ASCII fails those checks (its bytes do not decode, or not to that shape).
        p0 = _retyped(part(0), pa.binary(), pa.large_binary())
        ts, good = self._times(p0)
        ok = pc.and_(ok, good)
        heads = pc.binary_slice(p0, 0, -_PREFIX_END_CHARS).dictionary_encode()
        ip_no, user_no, good, ip_names, user_names = _split_heads(heads)
        ok = pc.and_(ok, good)
        # Low-cardinality columns are dictionary-encoded before rows are left out: filtering
        # their int32 indices is cheaper than filtering the strings.
        encoded = {"ua": part(5).dictionary_encode()}
        if self._session_at >= 0 and 7 + 2 * self._session_at < width:
            encoded["sid"] = part(7 + 2 * self._session_at).dictionary_encode()
        if self._org_at >= 0 and 7 + 2 * self._org_at < width:
            encoded["org"] = part(7 + 2 * self._org_at).dictionary_encode()
        cols = {"ip": ip_no, "user": user_no, **{k: v.indices for k, v in encoded.items()}}
        cols["request"] = part(1)
        cols["status"] = status
        cols["size"] = size
        cols = {k: v.filter(ok) for k, v in cols.items()}
        rows = rows.filter(ok)
        ts = ts.filter(ok)
        if not len(rows):
            return
        # Requests: route, token, stored path and query once per distinct request line.
        enc = cols.pop("request").dictionary_encode()
        infos = self.normalizer.request_infos(enc.dictionary.to_pylist())
        req_idx = enc.indices
        info = info_columns(infos, _NO_REQUEST, self._route_no, self._routes)
        if info.missing:  # request lines that are not 2 or 3 words: left out
            good = pc.take(pa.array([i is not None for i in infos], pa.bool_()), req_idx)
            cols = {k: v.filter(good) for k, v in cols.items()}
            rows = rows.filter(good)
            ts = ts.filter(good)
            req_idx = req_idx.filter(good)
        if not len(rows):
            return
        vals: dict[str, list[Any]] = {
            "action": info.action,
            "method": info.method,
            "path": info.path,
            "query": info.query,
            "token": info.token,
        }
        route_codes = info.route_code
        # Status and bytes (checked by _status_and_size).
        status = cols.pop("status")
        size = cols.pop("size")
        size = pc.if_else(pc.equal(size, _lit("-")), _lit("0"), size).cast(pa.int64())
        # Outcome and categories depend on (route, status, token or not): a few distinct codes.
        code = pc.add(
            pc.multiply(pc.take(pa.array(route_codes, pa.int64()), req_idx), _lit(1000)),
            status,
        )
        enc = code.dictionary_encode()
        outcomes: list[str] = []
        categories: list[tuple[str, ...]] = []
        for value in enc.dictionary.to_pylist():
            route = self._routes[value // 2000]
            outcome = route.outcome(value % 1000)
            outcomes.append(outcome)
            has_token = (value // 1000) % 2 == 1
            categories.append(route.discloses if (has_token and outcome == "success") else ())
        vals["outcome"] = outcomes
        vals["categories"] = categories
        idx: dict[str, pa.Array] = {"req": req_idx, "code": enc.indices}
        # Accounts: peer group and organisation from the profile or the directory.
        users, kinds, dir_orgs = account_columns(user_names, self.normalizer)
        vals.update(user=users, kind=kinds, dir_org=dir_orgs, ip=ip_names)
        idx["user"] = cols["user"]
        idx["ip"] = cols["ip"]
        for name, column in encoded.items():  # ua, sid, org
            idx[name] = cols[name]
            vals[name] = present_values(column.dictionary.to_pylist())
        chunk.rows = rows
        chunk.ts = ts
        chunk.status = status
        chunk.size = size
        chunk.idx = idx
        chunk.vals = vals
