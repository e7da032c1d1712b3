"""Ingestion pipeline: sources -> parse -> normalise (with pseudonymisation) -> event batches.

``iter_batches`` is the bulk path used by ``rempart ingest`` and ``rempart hunt``;
``read_events`` flattens it to single events. Bad lines are quarantined, counted by reason, and
the run goes on: nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rempart.events import Event
from rempart.ingest.columnar import ColumnarChunk, ColumnarDecoder, iter_blocks
from rempart.ingest.normalise import DirectoryEntry, Normalizer, RequestInfo
from rempart.ingest.parsers import _TRAILING, CombinedParser, JsonParser, Reject
from rempart.ingest.profile import RouteProfile, load_profile
from rempart.ingest.quarantine import Quarantine
from rempart.ingest.sources import open_input
from rempart.protect.tokens import Tokenizer, generate_key

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["auto", "combined", "jsonl"]
#: The combined format when no field holds an escaped quote (nginx writes " as \\x22): a regex
#: without alternation inside quoted fields, several times faster than the general one.
_FAST_COMBINED = re.compile(
    r'([^ ]+) [^ ]+ ([^ ]+) \[([^\]]+)\] "([^"\\]*)" ([0-9]{3}) ([0-9]+|-)'
    r' "[^"\\]*" "([^"\\]*)"(.*)'
)
DEFAULT_MAX_LINE = 65_536
_ACTION = attrgetter("action")
_OUTCOME = attrgetter("outcome")
_USER = attrgetter("user_name")
_TS = attrgetter("ts")


@dataclass
class IngestStats:
    """What a run read: lines, events by action, accounts, beneficiaries, quarantined by reason."""

    lines: int = 0
    events: int = 0
    sources: list[str] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    accounts: set[str] = field(default_factory=set)
    beneficiaries_read: set[str] = field(default_factory=set)
    first_ts: float | None = None
    last_ts: float | None = None
    #: Count lines and events only (actions, outcomes, accounts, beneficiaries and times stay
    #: empty): for a caller that reads nothing else, such as ``hunt`` (the distinct accounts
    #: and beneficiaries of each chunk cost about 1% of its time).
    counts_only: bool = False

    def observe(self, events: list[Event]) -> None:
        if not events:
            return
        self.events += len(events)
        if self.counts_only:
            return
        self.actions.update(map(_ACTION, events))
        self.outcomes.update(map(_OUTCOME, events))
        self.accounts.update(map(_USER, events))
        self.accounts.discard(None)  # type: ignore[arg-type,unused-ignore]
        self.beneficiaries_read.update(
            e.beneficiary_token for e in events if e.categories and e.beneficiary_token
        )
        lo = min(map(_TS, events))
        hi = max(map(_TS, events))
        self.first_ts = lo if self.first_ts is None else min(lo, self.first_ts)
        self.last_ts = hi if self.last_ts is None else max(hi, self.last_ts)

    def observe_chunk(self, chunk: ColumnarChunk) -> None:
        """Same as :meth:`observe` on every event of the chunk, computed from its columns."""
        if self.counts_only:
            self.events += len(chunk)
            return
        self.observe(chunk.slow_events)
        span = chunk.observe_into(
            self.actions, self.outcomes, self.accounts, self.beneficiaries_read
        )
        if span is None:
            return
        self.events += len(chunk.rows)
        lo, hi = span
        self.first_ts = lo if self.first_ts is None else min(lo, self.first_ts)
        self.last_ts = hi if self.last_ts is None else max(hi, self.last_ts)

    def to_dict(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "lines": self.lines,
            "events": self.events,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "actions": dict(sorted(self.actions.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "accounts": len(self.accounts),
            "beneficiaries_read": len(self.beneficiaries_read),
            "first_event": self.first_ts,
            "last_event": self.last_ts,
        }


class EventBatch:
    """The events of one chunk of one source, in file order.

    ``events()`` builds ``Event`` objects (only those whose action is in ``keep_actions`` when
    given; ``skipped`` counts the others); ``table`` is the columnar form of every event.
    """

    __slots__ = ("_all", "_chunk", "_events", "_size", "keep_actions", "skipped", "source")

    def __init__(
        self,
        source: str,
        events: list[Event] | None = None,
        *,
        chunk: ColumnarChunk | None = None,
        keep_actions: frozenset[str] | None = None,
    ):
        self.source = source
        self.keep_actions = keep_actions
        self._chunk = chunk
        self._events: list[Event] | None = None
        self._all: list[Event] = []
        if chunk is not None:
            self._size = len(chunk)
            self.skipped = self._size - chunk.count_kept(keep_actions)
        else:
            events = events or []
            self._size = len(events)
            self._events = events
            if keep_actions is not None:
                self._events = [e for e in events if e.action in keep_actions]
            self.skipped = self._size - len(self._events)
            self._all = events

    def __len__(self) -> int:
        return self._size

    def events(self) -> list[Event]:
        if self._events is None:
            assert self._chunk is not None
            self._events = self._chunk.events(self.keep_actions)
        return self._events

    @property
    def table(self) -> pa.Table:
        if self._chunk is not None:
            return self._chunk.table()
        from rempart.ingest.archive import events_to_table

        return events_to_table(self._all)


class LineDecoder:
    """Bytes lines -> events for one source, quarantining what cannot be read."""

    def __init__(
        self,
        normalizer: Normalizer,
        quarantine: Quarantine,
        *,
        fmt: Format = "auto",
        json_mapping: dict[str, str] | None = None,
        time_format: str = "iso8601",
        max_line_bytes: int = DEFAULT_MAX_LINE,
    ):
        self.normalizer = normalizer
        self.quarantine = quarantine
        self.fmt = fmt
        self.max_line_bytes = max_line_bytes
        trailing = normalizer.profile.trailing_fields
        self._combined = CombinedParser(trailing)
        self._by_request: dict[str, RequestInfo] = {}
        self._session_at = trailing.index("session_id") if "session_id" in trailing else -1
        self._org_at = trailing.index("organization_id") if "organization_id" in trailing else -1
        self._json = JsonParser(json_mapping, time_format)

    def detect_format(self, first: bytes) -> Format:
        if self.fmt != "auto":
            return self.fmt
        return "jsonl" if first.lstrip()[:1] == b"{" else "combined"

    def decode(
        self,
        source: str,
        first_line: int,
        lines: list[bytes],
        fmt: Format,
        *,
        complete: bool = True,
    ) -> list[Event]:
        if fmt == "combined":
            return self._decode_combined(source, first_line, lines, complete=complete)
        return self._decode_each(source, first_line, lines, fmt, complete=complete)

    def _decode_combined(
        self, source: str, first_line: int, lines: list[bytes], *, complete: bool
    ) -> list[Event]:
        """Fast path for the combined format: one simple regex per line, then cached lookups
        per distinct time string, request target and account. Lines the fast regex does not
        accept (escaped quotes, malformed lines) go through the reference parser."""
        try:
            texts = b"\n".join(lines).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            return self._decode_each(source, first_line, lines, "combined", complete=complete)
        if len(texts) != len(lines):
            return self._decode_each(source, first_line, lines, "combined", complete=complete)
        fast = _FAST_COMBINED.fullmatch
        trailing = _TRAILING.findall
        norm = self.normalizer
        request_info = norm.request_info
        account_info = norm.account_info
        interned = norm._intern
        if len(interned) > 500_000:
            interned.clear()
        intern = interned.setdefault
        requests = self._by_request
        if len(requests) >= 1_000_000:
            requests.clear()
        by_request = requests.get
        parse_time = self._combined._time
        times = parse_time._cache.get
        session_at = self._session_at
        org_at = self._org_at
        max_chars = self.max_line_bytes // 4
        out: list[Event] = []
        append = out.append
        slow: list[tuple[int, int]] = []
        lineno = first_line - 1
        for i, text in enumerate(texts):
            lineno += 1
            if text.endswith("\r"):
                text = text[:-1]
            m = fast(text) if len(text) <= max_chars else None
            if m is None:
                if text:
                    slow.append((i, len(out)))
                continue
            ip, user, time_s, request, status_s, bytes_s, ua, rest = m.groups()
            info = by_request(request)
            if info is None:
                parts = request.split(" ")
                if len(parts) != 3 and len(parts) != 2:
                    slow.append((i, len(out)))
                    continue
                info = request_info(parts[0], parts[1])
                if len(requests) < 1_000_000:
                    requests[request] = info
            ts = times(time_s)
            if ts is None:
                try:
                    ts = parse_time(time_s)
                except Reject:
                    slow.append((i, len(out)))
                    continue
            route = info.route
            status = int(status_s)
            outcome = route.outcome(status)
            token = info.token
            sid = org = kind = None
            if rest and (session_at >= 0 or org_at >= 0):
                vals = rest[2:-1].split('" "') if rest[:2] == ' "' and rest[-1] == '"' else []
                if not vals or rest.count('"') != 2 * len(vals):
                    vals = [q if q else b for q, b in trailing(rest)]
                if 0 <= session_at < len(vals) and vals[session_at] not in ("-", ""):
                    sid = vals[session_at]
                if 0 <= org_at < len(vals) and vals[org_at] not in ("-", ""):
                    org = vals[org_at]
            if user == "-":
                user = None
            else:
                user, kind, dir_org = account_info(user)
                org = org or dir_org
            append(
                Event(
                    ts,
                    intern(ip, ip),
                    route.action,
                    outcome,
                    user,
                    org,
                    None if ua is None or ua == "-" or ua == "" else intern(ua, ua),
                    info.method,
                    info.path,
                    info.query,
                    status,
                    0 if bytes_s == "-" else int(bytes_s),
                    sid,
                    token,
                    route.discloses if (token is not None and outcome == "success") else (),
                    kind,
                    source,
                    lineno,
                )
            )
        if slow:
            # Reference path for the rest, keeping file order.
            last_index = len(lines) - 1
            for index, position in reversed(slow):
                got = self._decode_each(
                    source,
                    first_line + index,
                    [lines[index]],
                    "combined",
                    complete=complete or index != last_index,
                )
                out[position:position] = got
        return out

    def decode_one(self, source: str, lineno: int, raw: bytes, complete: bool) -> list[Event]:
        """One combined-format line through the reference path (0 or 1 event)."""
        return self._decode_each(source, lineno, [raw], "combined", complete=complete)

    def _decode_each(
        self, source: str, first_line: int, lines: list[bytes], fmt: Format, *, complete: bool
    ) -> list[Event]:
        parse = self._json.parse if fmt == "jsonl" else self._combined.parse
        to_event = self.normalizer.event
        out: list[Event] = []
        append = out.append
        limit = self.max_line_bytes
        lineno = first_line - 1
        last_index = len(lines) - 1
        for i, raw in enumerate(lines):
            lineno += 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue  # blank lines carry nothing; counted in lines read
            if len(raw) > limit:
                self.quarantine.add(source, lineno, "too_long", f"{len(raw)} bytes > {limit}", raw)
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.quarantine.add(
                    source, lineno, "encoding", f"invalid UTF-8 at byte {exc.start}", raw
                )
                continue
            try:
                append(to_event(parse(text), source, lineno))
            except Reject as rej:
                reason = rej.reason
                if not complete and i == last_index and reason in ("bad_format", "json_invalid"):
                    reason = "truncated"
                self.quarantine.add(source, lineno, reason, rej.detail, raw)
        return out


def make_normalizer(
    profile: RouteProfile | str,
    tokenizer: Tokenizer | None = None,
    directory: dict[str, DirectoryEntry] | None = None,
    sealer: Callable[[str, str], None] | None = None,
) -> Normalizer:
    prof = profile if isinstance(profile, RouteProfile) else load_profile(profile)
    return Normalizer(prof, tokenizer or Tokenizer(generate_key()), directory, sealer)


def iter_batches(
    paths: Sequence[Path | str],
    *,
    profile: RouteProfile | str = "tiers-payant",
    tokenizer: Tokenizer | None = None,
    quarantine: Quarantine | None = None,
    fmt: Format = "auto",
    json_mapping: dict[str, str] | None = None,
    time_format: str = "iso8601",
    directory: dict[str, DirectoryEntry] | None = None,
    stats: IngestStats | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE,
    chunk_size: int = 4 << 20,
    sealer: Callable[[str, str], None] | None = None,
    keep_actions: frozenset[str] | None = None,
    columnar: bool = True,
) -> Iterator[EventBatch]:
    """Read every path in order, yielding batches of events (file order within a source).

    Without a tokenizer, a throw-away random key is used (tokens then only mean something within
    this run): pass ``Tokenizer(resolve_key(...))`` for tokens stable across runs.

    ``keep_actions``: ``batch.events()`` only builds the events whose action is in the set (the
    others are still counted in ``stats`` and present in ``batch.table``). ``columnar=False``
    decodes line by line (the reference path; same events, slower).
    """
    normalizer = make_normalizer(profile, tokenizer, directory, sealer)
    quarantine = quarantine or Quarantine(None)
    if quarantine.redact is None:
        quarantine.redact = normalizer.redact_bytes
    decoder = LineDecoder(
        normalizer,
        quarantine,
        fmt=fmt,
        json_mapping=json_mapping,
        time_format=time_format,
        max_line_bytes=max_line_bytes,
    )
    stats = stats if stats is not None else IngestStats()
    fast = ColumnarDecoder(
        normalizer,
        decoder._combined._time,
        max_line_bytes=max_line_bytes,
    )
    try:
        for p in paths:
            source, stream = open_input(Path(p))
            stats.sources.append(source)
            fmt_here: Format | None = None
            first = 1
            with stream:
                for block in iter_blocks(stream, where=source, chunk_size=chunk_size):
                    if fmt_here is None:
                        fmt_here = decoder.detect_format(
                            next((ln for ln in block.lines() if ln.strip()), b"")
                        )
                    if fmt_here == "combined" and columnar:
                        chunk = fast.decode(source, first, block, decoder.decode_one)
                        count = chunk.lines
                        stats.lines += count
                        stats.observe_chunk(chunk)
                        if len(chunk):
                            yield EventBatch(source, chunk=chunk, keep_actions=keep_actions)
                    else:
                        lines = block.lines()
                        count = len(lines)
                        stats.lines += count
                        events = decoder.decode(
                            source, first, lines, fmt_here, complete=block.complete
                        )
                        stats.observe(events)
                        if events:
                            yield EventBatch(source, events, keep_actions=keep_actions)
                    first += count
    finally:
        stats.quarantined = quarantine.counts
        quarantine.flush()


def read_events(paths: Sequence[Path | str], **kwargs: object) -> Iterator[Event]:
    """Events of every path, one at a time (same options as :func:`iter_batches`)."""
    for batch in iter_batches(paths, **kwargs):  # type: ignore[arg-type]
        yield from batch.events()
