"""Columnar decode of the combined log format: a whole chunk at a time with pyarrow compute.

A chunk of raw bytes becomes one string array of lines; vectorised kernels (split on ``"``, a
short RE2 pattern on the ``ip ident user [time]`` prefix, equality checks) select the lines that
have the plain shape of the format, and cut them into columns. Python then runs once per
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

import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import BinaryIO, cast

import pyarrow as pa
import pyarrow.compute as pc

from rempart.errors import InputError
from rempart.events import Event
from rempart.ingest.archive import SCHEMA, events_to_table
from rempart.ingest.normalise import Normalizer, RequestInfo
from rempart.ingest.parsers import ClfTimeParser, Reject

#: ``ip ident user [time] `` (what precedes the first quote of a line).
_PREFIX = r"^(?P<ip>[^ ]+) [^ ]+ (?P<user>[^ ]+) \[(?P<time>[^\]]+)\] $"
#: `` status bytes `` between the request and the referer (bytes small enough for int64).
_STATUS_BYTES = r"^ [0-9]{3} (?:[0-9]{1,18}|-) $"
_CATEGORIES = pa.list_(pa.string())
_TS_TYPE = SCHEMA.field("ts").type
_LINE = attrgetter("line")
_ACTION = attrgetter("action")

#: Called for a line the columnar path does not take: (source, line number, raw, complete).
SlowDecoder = Callable[[str, int, bytes, bool], list[Event]]

_arange_cache: list[pa.Array] = [pa.array([], pa.int64())]


def _arange(n: int) -> pa.Array:
    cached = _arange_cache[0]
    if len(cached) < n:
        cached = pa.array(range(max(n, 2 * len(cached))), pa.int64())
        _arange_cache[0] = cached
    return cached.slice(0, n)


def _ints(arr: pa.Array | pa.ChunkedArray) -> list[int]:
    """Python ints of an integer array without nulls (through the buffer protocol: fast)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.int32():
        arr = arr.cast(pa.int32())
    buf = arr.buffers()[1]
    if buf is None:
        return []
    view = memoryview(buf).cast("i")
    return view[arr.offset : arr.offset + len(arr)].tolist()


def _whole(block: bytes, kind: pa.DataType) -> pa.Array:
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(block)))
    return pa.Array.from_buffers(kind, 1, [None, offsets, pa.py_buffer(block)])


def iter_blocks(
    stream: BinaryIO, *, where: str, chunk_size: int
) -> Iterator[tuple[bytes, int, bool]]:
    """``(block, number of lines, complete)``: whole lines joined by ``\\n`` (no final newline).

    Same lines as :func:`rempart.ingest.sources.iter_line_chunks`; the last block may end with
    a line that has no newline (``complete`` False).
    """
    pending = b""
    while True:
        try:
            data = stream.read(chunk_size)
        except (OSError, EOFError) as exc:
            raise InputError(
                f"cannot read (corrupt or truncated archive?): {exc}", where=where
            ) from None
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__module__.startswith("zstandard"):
                raise InputError(
                    f"cannot read (corrupt or truncated archive?): {exc}", where=where
                ) from None
            raise
        if not data:
            break
        if pending:
            data = pending + data
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut + 1 :]
        yield block, block.count(b"\n") + 1, True
    if pending:
        yield pending, 1, False


@dataclass(slots=True)
class _Distinct:
    """Per distinct (request, status): what every row with that pair gets."""

    action: list[str]
    outcome: list[str]
    method: list[str]
    path: list[str]
    query: list[str | None]
    token: list[str | None]
    categories: list[tuple[str, ...]]


class ColumnarChunk:
    """The decoded lines of one chunk: columns for the plain lines, events for the others."""

    def __init__(self, source: str, first_line: int):
        self.source = source
        self.first_line = first_line
        self.rows: pa.Array = pa.array([], pa.int64())  # row in chunk of each columnar event
        self.idx: dict[str, pa.Array] = {}
        self.vals: dict[str, list[object]] = {}
        self.keys: _Distinct | None = None
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
        if not len(self.rows) or self.keys is None:
            return None
        keys = self.keys
        counted = pc.value_counts(self.idx["key"])
        for k, c in zip(
            _ints(counted.field("values")), counted.field("counts").to_pylist(), strict=True
        ):
            actions[keys.action[k]] += c
            outcomes[keys.outcome[k]] += c
            token = keys.token[k]
            if keys.categories[k] and token:
                beneficiaries.add(token)
        users = self.vals["user"]
        accounts.update(
            cast(str, users[i]) for i in _ints(pc.unique(self.idx["user"])) if users[i] is not None
        )
        times = self.vals["ts"]
        used = [cast(float, times[i]) for i in _ints(pc.unique(self.idx["ts"]))]
        return min(used), max(used)

    # -- events -------------------------------------------------------------------------
    def _kept(self, keep: frozenset[str] | None) -> pa.Array | None:
        """Mask over the columnar rows of the actions kept (None: all rows)."""
        if keep is None or self.keys is None:
            return None
        flags = pa.array([a in keep for a in self.keys.action], pa.bool_())
        return pc.take(flags, self.idx["key"])

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
        if not len(self.rows) or self.keys is None:
            return slow
        mask = self._kept(keep)
        idx = self.idx if mask is None else {k: v.filter(mask) for k, v in self.idx.items()}
        rows = self.rows if mask is None else self.rows.filter(mask)
        vals = self.vals
        keys = self.keys

        def column(name: str, values: list[object] | None = None) -> list[object]:
            got = values if values is not None else vals[name]
            return list(map(got.__getitem__, _ints(idx[name])))

        k = _ints(idx["key"])
        u = _ints(idx["user"])
        users = column("user", None) if u else []
        kinds = list(map(vals["kind"].__getitem__, u))
        orgs: list[object] = list(map(vals["dir_org"].__getitem__, u))
        if "org" in idx:
            orgs = [o or d for o, d in zip(column("org"), orgs, strict=True)]
        sid = column("sid") if "sid" in idx else repeat(None)
        first = self.first_line
        fast = list(
            map(
                Event,
                column("ts"),
                column("ip"),
                map(keys.action.__getitem__, k),
                map(keys.outcome.__getitem__, k),
                users,
                orgs,
                column("ua"),
                map(keys.method.__getitem__, k),
                map(keys.path.__getitem__, k),
                map(keys.query.__getitem__, k),
                column("p2", vals["status"]),
                column("p2", vals["bytes"]),
                sid,
                map(keys.token.__getitem__, k),
                map(keys.categories.__getitem__, k),
                kinds,
                repeat(self.source),
                map(first.__add__, _ints(rows)),
            )
        )
        if slow:
            fast.extend(slow)
            fast.sort(key=_LINE)
        return fast

    def table(self) -> pa.Table:
        """Every event of the chunk (whatever ``keep``), with the archive schema, file order."""
        n = len(self.rows)
        if not n or self.keys is None:
            return events_to_table(self.slow_events)
        idx = self.idx
        vals = self.vals
        keys = self.keys

        def strings(values: list[object], index: pa.Array) -> pa.Array:
            return pc.take(pa.array(values, pa.string()), index)

        micros = pa.array([round(t * 1_000_000) for t in vals["ts"]], pa.int64())  # type: ignore[operator]
        orgs = strings(vals["dir_org"], idx["user"])
        if "org" in idx:
            orgs = pc.coalesce(strings(vals["org"], idx["org"]), orgs)
        cols = {
            "ts": pc.take(micros.cast(_TS_TYPE), idx["ts"]),
            "source_ip": strings(vals["ip"], idx["ip"]),
            "action": strings(keys.action, idx["key"]),  # type: ignore[arg-type]
            "outcome": strings(keys.outcome, idx["key"]),  # type: ignore[arg-type]
            "user_name": strings(vals["user"], idx["user"]),
            "organization_id": orgs,
            "user_agent": strings(vals["ua"], idx["ua"]),
            "method": strings(keys.method, idx["key"]),  # type: ignore[arg-type]
            "path": strings(keys.path, idx["key"]),  # type: ignore[arg-type]
            "query": strings(keys.query, idx["key"]),  # type: ignore[arg-type]
            "status": pc.take(pa.array(vals["status"], pa.int32()), idx["p2"]),
            "bytes": pc.take(pa.array(vals["bytes"], pa.int64()), idx["p2"]),
            "session_id": (
                strings(vals["sid"], idx["sid"]) if "sid" in idx else pa.nulls(n, pa.string())
            ),
            "beneficiary_token": strings(keys.token, idx["key"]),  # type: ignore[arg-type]
            "categories": pc.take(pa.array(keys.categories, _CATEGORIES), idx["key"]),
            "account_kind": strings(vals["kind"], idx["user"]),
            "source": pa.repeat(pa.scalar(self.source, pa.string()), n),
            "line": pc.add(self.rows, pa.scalar(self.first_line, pa.int64())),
        }
        table = pa.table([cols[f.name] for f in SCHEMA], schema=SCHEMA)
        if self.slow_events:
            table = pa.concat_tables([table, events_to_table(self.slow_events)])
            table = table.take(pc.sort_indices(table.column("line")))
        return table


class ColumnarDecoder:
    """Decodes blocks of combined-format lines for one run (caches persist across blocks)."""

    def __init__(
        self,
        normalizer: Normalizer,
        time_parser: ClfTimeParser,
        *,
        max_line_bytes: int,
        requests: dict[str, RequestInfo],
    ):
        self.normalizer = normalizer
        self.parse_time = time_parser
        self.max_chars = max_line_bytes // 4
        self._requests = requests
        trailing = normalizer.profile.trailing_fields
        self._session_at = trailing.index("session_id") if "session_id" in trailing else -1
        self._org_at = trailing.index("organization_id") if "organization_id" in trailing else -1

    def decode(
        self,
        source: str,
        first_line: int,
        block: bytes,
        complete: bool,
        slow: SlowDecoder,
    ) -> ColumnarChunk:
        chunk = ColumnarChunk(source, first_line)
        lines_bin = pc.split_pattern(_whole(block, pa.large_binary()), b"\n").flatten()
        n = len(lines_bin)
        bad_utf8: pa.Array | None = None
        try:
            lines = pc.split_pattern(_whole(block, pa.large_binary()).cast(pa.large_string()), "\n")
            lines = lines.flatten()
        except pa.ArrowInvalid:
            texts: list[str] = []
            bad: list[bool] = []
            for raw in block.split(b"\n"):
                try:
                    texts.append(raw.decode("utf-8"))
                    bad.append(False)
                except UnicodeDecodeError:
                    texts.append("")
                    bad.append(True)
            lines = pa.array(texts, pa.large_string())
            bad_utf8 = pa.array(bad, pa.bool_())
        cr = pc.ends_with(lines, "\r")
        if pc.any(cr).as_py():
            lines = pc.if_else(cr, pc.utf8_slice_codeunits(lines, 0, -1), lines)
        lengths = pc.binary_length(lines)
        blank = pc.equal(lengths, 0)
        if bad_utf8 is not None:
            blank = pc.and_(blank, pc.invert(bad_utf8))
        parts = pc.split_pattern(lines, '"')
        nparts = pc.list_value_length(parts)
        expected = pc.mode(nparts, 1)
        width = expected[0]["mode"].as_py() if len(expected) else 0
        cand = pc.and_(pc.equal(nparts, width), pc.less_equal(lengths, self.max_chars))
        if width < 7 or width % 2 == 0:
            cand = pc.and_(cand, pa.scalar(False))
        if b"\\" in block:
            cand = pc.and_(cand, pc.invert(pc.match_substring(lines, "\\")))
        if bad_utf8 is not None:
            cand = pc.and_(cand, pc.invert(bad_utf8))
        rows = pc.indices_nonzero(cand).cast(pa.int64())
        if len(rows):
            self._columns(chunk, rows, parts.filter(cand).flatten(), width)
        # Everything else that is not blank: the reference path, in file order.
        marks = [False] * n
        for r in _ints(chunk.rows):
            marks[r] = True
        taken = pa.array(marks, pa.bool_())
        others = _ints(pc.indices_nonzero(pc.invert(pc.or_(taken, blank))))
        if others:
            raws = lines_bin.take(pa.array(others, pa.int64())).to_pylist()
            last = n - 1
            for r, raw in zip(others, raws, strict=True):
                chunk.slow_events += slow(source, first_line + r, raw, complete or r != last)
        return chunk

    def _columns(self, chunk: ColumnarChunk, rows: pa.Array, flat: pa.Array, width: int) -> None:
        base = pc.multiply(_arange(len(rows)), width)

        def part(j: int) -> pa.Array:
            return flat.take(pc.add(base, j))

        ok = pc.equal(part(width - 1), "")
        for j in range(4, width - 1, 2):
            ok = pc.and_(ok, pc.equal(part(j), " "))
        prefix = pc.extract_regex(part(0), _PREFIX)
        p2 = part(2)
        ok = pc.and_(ok, pc.and_(pc.is_valid(prefix), pc.match_substring_regex(p2, _STATUS_BYTES)))
        ok = pc.fill_null(ok, False)
        cols = {
            "ip": prefix.field("ip"),
            "user": prefix.field("user"),
            "ts": prefix.field("time"),
            "request": part(1),
            "p2": p2,
            "ua": part(5),
        }
        if self._session_at >= 0 and 7 + 2 * self._session_at < width:
            cols["sid"] = part(7 + 2 * self._session_at)
        if self._org_at >= 0 and 7 + 2 * self._org_at < width:
            cols["org"] = part(7 + 2 * self._org_at)
        cols = {k: v.filter(ok) for k, v in cols.items()}
        rows = rows.filter(ok)
        # Time strings: one parse per distinct value; impossible ones go to the reference path.
        enc = cols["ts"].dictionary_encode()
        ts_vals: list[object] = []
        ts_ok: list[bool] = []
        parse = self.parse_time
        for text in enc.dictionary.to_pylist():
            try:
                ts_vals.append(parse(text))
                ts_ok.append(True)
            except Reject:
                ts_vals.append(0.0)
                ts_ok.append(False)
        ts_idx = enc.indices
        if not all(ts_ok):
            good = pc.take(pa.array(ts_ok, pa.bool_()), ts_idx)
            cols = {k: v.filter(good) for k, v in cols.items()}
            rows = rows.filter(good)
            ts_idx = ts_idx.filter(good)
        # Requests: one route match / tokenisation per distinct target.
        enc = cols["request"].dictionary_encode()
        infos: list[RequestInfo | None] = []
        cache = self._requests
        request_info = self.normalizer.request_info
        for request in enc.dictionary.to_pylist():
            info = cache.get(request)
            if info is None:
                words = request.split(" ")
                if len(words) == 3 or len(words) == 2:
                    info = request_info(words[0], words[1])
                    if len(cache) >= 1_000_000:
                        cache.clear()
                    cache[request] = info
            infos.append(info)
        req_idx = enc.indices
        if any(i is None for i in infos):
            good = pc.take(pa.array([i is not None for i in infos], pa.bool_()), req_idx)
            cols = {k: v.filter(good) for k, v in cols.items()}
            rows = rows.filter(good)
            ts_idx = ts_idx.filter(good)
            req_idx = req_idx.filter(good)
        if not len(rows):
            return
        # Status and bytes, per distinct " status bytes " text.
        enc = cols["p2"].dictionary_encode()
        statuses: list[object] = []
        sizes: list[object] = []
        for text in enc.dictionary.to_pylist():
            _, status, size, _ = text.split(" ")
            statuses.append(int(status))
            sizes.append(0 if size == "-" else int(size))
        p2_idx = enc.indices
        # (request, status) -> action, outcome, categories...
        status_col = pc.take(pa.array(statuses, pa.int64()), p2_idx)
        pair = pc.add(pc.multiply(req_idx.cast(pa.int64()), 1000), status_col)
        enc = pair.dictionary_encode()
        keys = _Distinct([], [], [], [], [], [], [])
        for code in enc.dictionary.to_pylist():
            info = infos[code // 1000]
            assert info is not None
            route = info.route
            outcome = route.outcome(code % 1000)
            keys.action.append(route.action)
            keys.outcome.append(outcome)
            keys.method.append(info.method)
            keys.path.append(info.path)
            keys.query.append(info.query)
            keys.token.append(info.token)
            keys.categories.append(
                route.discloses if (info.token is not None and outcome == "success") else ()
            )
        chunk.keys = keys
        chunk.rows = rows
        idx: dict[str, pa.Array] = {"ts": ts_idx, "key": enc.indices, "p2": p2_idx}
        vals: dict[str, list[object]] = {"ts": ts_vals, "status": statuses, "bytes": sizes}
        # Accounts: peer group and organisation from the profile or the directory.
        enc = cols["user"].dictionary_encode()
        users: list[object] = []
        kinds: list[object] = []
        dir_orgs: list[object] = []
        account_info = self.normalizer.account_info
        for name in enc.dictionary.to_pylist():
            if name == "-":
                users.append(None)
                kinds.append(None)
                dir_orgs.append(None)
            else:
                user, kind, org = account_info(name)
                users.append(user)
                kinds.append(kind)
                dir_orgs.append(org)
        idx["user"] = enc.indices
        vals.update(user=users, kind=kinds, dir_org=dir_orgs)
        for name in ("ip", "ua", "sid", "org"):
            if name not in cols:
                continue
            enc = cols[name].dictionary_encode()
            values: list[object] = enc.dictionary.to_pylist()
            if name != "ip":
                values = [None if v == "-" or v == "" else v for v in values]
            idx[name] = enc.indices
            vals[name] = values
        chunk.idx = idx
        chunk.vals = vals
