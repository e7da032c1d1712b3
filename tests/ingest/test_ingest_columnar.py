"""The columnar decode gives exactly the events, quarantine and statistics of the per-line path."""

from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.ingest import Quarantine
from rempart.ingest.archive import ArchiveWriter, events_to_table, part_files
from rempart.ingest.columnar import (
    Block,
    _lit,
    _split_fields,
    _split_heads,
    iter_blocks,
    le_bytes,
)
from rempart.ingest.distinct import cut_heads
from rempart.ingest.normalise import load_directory
from rempart.ingest.pipeline import IngestStats, LineDecoder, iter_batches
from rempart.protect.tokens import Tokenizer, TokenKey
from rempart.sim import SimOptions, simulate
from tests.ingest.conftest import NIR_A, NIR_B

TOKENIZER = Tokenizer(TokenKey("t1", b"k" * 32))


@dataclass
class Recorder(Quarantine):
    records: list[tuple[str, int, str, str, bytes]] = field(default_factory=list)

    def __init__(self) -> None:
        super().__init__(None)
        self.records = []

    def add(self, source: str, line: int, reason: str, detail: str, raw: bytes) -> None:
        super().add(source, line, reason, detail, raw)
        self.records.append((source, line, reason, detail, raw))


def _per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the non-columnar path use the reference decoder for every line."""

    def each(self, source, first_line, lines, *, complete):  # type: ignore[no-untyped-def]
        return self._decode_each(source, first_line, lines, "combined", complete=complete)

    monkeypatch.setattr(LineDecoder, "_decode_combined", each)


def _run(
    paths: list[Path],
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    counts_only: bool = False,
    **kw: object,
):
    quarantine = Recorder()
    stats = IngestStats(counts_only=counts_only)
    with monkeypatch.context() as m:
        if mode == "reference":
            _per_line(m)
        batches = list(
            iter_batches(
                paths,
                tokenizer=TOKENIZER,
                quarantine=quarantine,
                stats=stats,
                columnar=mode == "columnar",
                **kw,  # type: ignore[arg-type]
            )
        )
        events = [e for b in batches for e in b.events()]
    return events, quarantine.records, stats.to_dict(), batches


def _same_everywhere(paths: list[Path], monkeypatch: pytest.MonkeyPatch, **kw: object):
    got = {m: _run(paths, m, monkeypatch, **kw) for m in ("columnar", "fast", "reference")}
    events, records, stats, batches = got["columnar"]
    for mode in ("fast", "reference"):
        assert events == got[mode][0], mode
        assert stats == got[mode][2], mode
    # Counting only (hunt): the same lines, events and quarantine, columnar or line by line.
    for mode in ("columnar", "fast"):
        counted = _run(paths, mode, monkeypatch, counts_only=True, **kw)[2]
        assert (counted["lines"], counted["events"]) == (stats["lines"], stats["events"])
        assert counted["accounts"] == counted["beneficiaries_read"] == 0
        assert counted["quarantined"] == stats["quarantined"]
    # Quarantine in file order, as the reference path (the former fast path wrote the bad
    # lines of a chunk last to first).
    assert records == got["reference"][1]
    assert sorted(records) == sorted(got["fast"][1])
    # The table built from columns is the table built from the events.
    for batch in batches:
        assert batch.table.equals(events_to_table(batch.events()))
    return events, records, stats, batches


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(SimOptions(seed=11, accounts=20, days=4), out, events=False)
    return out


def test_simulated_log_with_every_attack_decodes_to_the_same_events(simulated, monkeypatch):
    directory = load_directory(simulated / "directory.csv")
    events, records, stats, _ = _same_everywhere(
        [simulated / "access.log"], monkeypatch, directory=directory, chunk_size=256 << 10
    )
    assert stats["events"] == len(events) > 10_000
    assert not records
    assert {e.action for e in events} >= {"auth.login", "beneficiary.read", "claim.create"}


def test_keep_actions_builds_only_those_events_but_counts_and_archives_all(simulated):
    keep = frozenset({"auth.login", "beneficiary.read", "claim.create"})
    log = simulated / "access.log"
    full_stats, kept_stats = IngestStats(), IngestStats()
    full = list(iter_batches([log], tokenizer=TOKENIZER, stats=full_stats, chunk_size=1 << 18))
    kept = list(
        iter_batches(
            [log], tokenizer=TOKENIZER, stats=kept_stats, keep_actions=keep, chunk_size=1 << 18
        )
    )
    everything = [e for b in full for e in b.events()]
    only = [e for b in kept for e in b.events()]
    assert only == [e for e in everything if e.action in keep]
    assert sum(b.skipped for b in kept) == len(everything) - len(only) > 0
    assert sum(len(b) for b in kept) == len(everything)
    assert kept_stats.to_dict() == full_stats.to_dict()
    for a, b in zip(full, kept, strict=True):
        assert a.table.equals(b.table)


def test_archive_from_columns_equals_archive_from_events(simulated, tmp_path):
    log = simulated / "access.log"
    by_events = ArchiveWriter(tmp_path / "events", flush_rows=3000, run="r")
    by_table = ArchiveWriter(tmp_path / "table", flush_rows=3000, run="r")
    for batch in iter_batches([log], tokenizer=TOKENIZER, chunk_size=1 << 17):
        by_events.add(batch.events())
        by_table.add_table(batch.table)
    by_events.close()
    by_table.close()
    left = [p.relative_to(tmp_path / "events") for p in part_files(tmp_path / "events")]
    right = [p.relative_to(tmp_path / "table") for p in part_files(tmp_path / "table")]
    assert left == right and len(left) > 4  # several days, several parts a day
    for rel in left:
        assert pq.read_table(tmp_path / "events" / rel).equals(
            pq.read_table(tmp_path / "table" / rel)
        )


# -- generated lines -------------------------------------------------------------------------

TIMES = st.sampled_from(
    [
        "29/Nov/2026:09:03:22 +0100",
        "29/Nov/2026:09:03:23 +0100",
        "01/Dec/2026:00:00:00 -0230",
        "29/Nov/2026:09:03:60 +0100",  # leap second: accepted as the next minute
        "29/Nov/2026:09:03:61 +0100",
        "31/Feb/2026:00:00:00 +0000",
        "29/Foo/2026:09:03:22 +0100",
        "29/nov/2026:09:03:22 +0100",
        "29/Nov/2026:24:00:00 +0100",
        "9/Nov/2026:09:03:22 +0100",
        "29/Nov/2026:09:03:22",
        "00/Nov/2026:09:03:22 +0100",
        "29/Nov/0000:09:03:22 +0100",
        "29/Nov/2026:09:03:22 +01 0",
        "29/Nov/2026:09:03:22 x0100",
    ]
)
NIRS = st.sampled_from([NIR_A, NIR_B, "2A05799351234", "1 85 05 78 006 084 36", "185057800608436"])
TARGETS = st.one_of(
    NIRS.map(lambda n: f"/api/v1/beneficiaires/{n}/droits"),
    NIRS.map(lambda n: f"/api/v1/lookup?nir={n}&x=1"),
    NIRS.map(lambda n: f"/api/v1/lookup?other={n}"),
    NIRS.map(lambda n: f"/weird/{n}/page?q={n}"),
    st.sampled_from(
        ["/auth/login", "/api/v1/actes", "/static/app.js", "/app/", "/", "/api/v1/me?", "/a?b"]
    ),
)
REQUESTS = st.one_of(
    st.tuples(st.sampled_from(["GET", "POST", "get"]), TARGETS).map(
        lambda mt: f"{mt[0]} {mt[1]} HTTP/1.1"
    ),
    TARGETS.map(lambda t: f"GET {t}"),
    st.sampled_from(["GET", "", "GET / HTTP/1.1 extra", 'GET /a\\"b HTTP/1.1', "GET  /x HTTP/1.1"]),
)
TRAILING = st.sampled_from(
    [
        ' "0.012" "s-1" "ORG9"',
        ' "0.012" "s-1"',
        ' "0.012" "-" "-"',
        ' "0.5" "" ""',
        "",
        ' "0.1"',
        " 0.1 s-2",
        ' "0.1" "s\\"q"',
        ' "0.1" "s-3" "O" "extra"',
        ' "0.1""s-4"',
    ]
)


@st.composite
def log_lines(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 10))
    if kind == 0:
        return draw(st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s))
    if kind == 10:  # bare quotes (all fields empty), a tab, a lone quote
        return draw(st.sampled_from(['"' * 8, '"' * 10, '"' * 12, "\t", '"']))
    if kind == 1:
        return ""
    # An ip with a space or an empty user: a head without the ``ip ident user`` shape.
    ip = draw(st.sampled_from(["203.0.113.7", "2001:db8::1", "10.0.0.1", "é", "a]b", "10.0.0.1 x"]))
    user = draw(st.sampled_from(["-", "PH0042", "MD7", "zz", "ü9", "LB0001", ""]))
    status = draw(st.sampled_from(["200", "401", "404", "500", "302", "20", "2000"]))
    size = draw(
        st.sampled_from(
            ["0", "512", "-", "007", "123456789012345678", "1234567890123456789", "-1", "+1", "٣"]
        )
    )
    ua = draw(st.sampled_from(["-", "", "Mozilla/5.0 (X11)", 'curl \\"x\\"', "ua é"]))
    referer = draw(st.sampled_from(["-", "https://portail/app/", 'a\\"b']))
    text = (
        f'{ip} - {user} [{draw(TIMES)}] "{draw(REQUESTS)}" {status} {size}'
        f' "{referer}" "{ua}"{draw(TRAILING)}'
    )
    if draw(st.integers(0, 15)) == 0:
        text = text[: draw(st.integers(1, len(text)))]  # cut off
    return text


PROFILE_TEXT = (
    resources.files("rempart.ingest")
    .joinpath("profiles", "tiers-payant.yaml")
    .read_text(encoding="utf-8")
    .replace(
        "trailing_fields: [request_time, session_id]",
        "trailing_fields: [request_time, session_id, organization_id]",
    )
    .replace(
        "routes:\n",
        "routes:\n  - name: lookup\n    method: GET\n    path: /api/v1/lookup\n"
        "    action: beneficiary.read\n    beneficiary_param: nir\n    discloses: [identite]\n",
        1,
    )
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=st.lists(log_lines(), min_size=1, max_size=60),
    crlf=st.lists(st.booleans(), min_size=60, max_size=60),
    final_newline=st.booleans(),
    bad_utf8_at=st.one_of(st.none(), st.integers(0, 59)),
    chunk_size=st.sampled_from([64, 700, 1 << 16]),
    custom_profile=st.booleans(),
    plain=st.booleans(),
    bom=st.booleans(),
)
def test_generated_lines_decode_identically(
    tmp_path_factory,
    monkeypatch,
    lines,
    crlf,
    final_newline,
    bad_utf8_at,
    chunk_size,
    custom_profile,
    plain,
    bom,
):
    tmp = tmp_path_factory.mktemp("gen")
    if plain:  # no blank line, no CR, valid UTF-8: the blocks Arrow's CSV tokenizer cuts
        lines = [ln for ln in lines if ln] or ["x"]
        crlf = [False] * len(crlf)
        bad_utf8_at = None
    raw = [ln.encode() + (b"\r" if crlf[i] else b"") for i, ln in enumerate(lines)]
    if bad_utf8_at is not None and bad_utf8_at < len(raw):
        raw[bad_utf8_at] += b"\xff\xfe"
    if bom:
        raw[0] = b"\xef\xbb\xbf" + raw[0]
    data = b"\n".join(raw) + (b"\n" if final_newline else b"")
    log = tmp / "access.log"
    log.write_bytes(data)
    profile = "tiers-payant"
    if custom_profile:
        (tmp / "p.yaml").write_text(PROFILE_TEXT)
        profile = str(tmp / "p.yaml")
    events, _, stats, _ = _same_everywhere(
        [log], monkeypatch, chunk_size=chunk_size, profile=profile
    )
    assert stats["lines"] == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    for e in events:  # identifiers in paths of unknown routes and in queries are tokens
        stored = f"{e.path if e.action != 'static' else ''}?{e.query or ''}"
        for nir in (NIR_A, NIR_B, "1 85 05 78 006 084 36"):
            assert nir not in stored


def test_lines_whose_head_is_not_ip_ident_user_are_set_aside_as_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ip with a space, an empty user, or a user with a space: the columnar decode cuts
    each distinct head once and must reject these as the per-line path does (twice each: a
    repeated head is one distinct value)."""
    rest = '[29/Nov/2026:09:03:22 +0100] "GET /app/ HTTP/1.1" 200 5 "-" "ua" "0.1" "s-1"'
    heads = ["10.0.0.1 x - PH0042", "10.0.0.2 -", "10.0.0.3 - PH 7", "10.0.0.4 - PH0042"]
    log = tmp_path / "access.log"
    log.write_text("".join(f"{h} {rest}\n" for h in heads * 2))
    events, records, stats, _ = _same_everywhere([log], monkeypatch)
    assert [(e.source_ip, e.user_name, e.line) for e in events] == [
        ("10.0.0.4", "PH0042", 4),
        ("10.0.0.4", "PH0042", 8),
    ]
    assert len(records) == 6 and stats["quarantined"]


_HEAD_TEXT = st.text(alphabet=st.sampled_from("ab1.:- \t\ré\u2028"), max_size=12)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            _HEAD_TEXT.map(str.encode),
            st.binary(max_size=6),
            _HEAD_TEXT.map(lambda t: t.encode() + b"\xc3"),  # a cut inside a character
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_heads_cut_by_arrow_are_the_heads_cut_by_the_compiled_loop(
    heads: list[bytes], utf8_only: bool
) -> None:
    """``_split_heads`` (Arrow's RE2, or the loop when a head is not UTF-8) gives, row for
    row, the ip, user and shape ``cut_heads`` gives (Python's ``re``), numbered alike."""
    if utf8_only:
        heads = [h.decode("utf-8", "replace").encode() for h in heads]
    rows = heads + heads[::2]
    encoded = pa.array(rows, pa.binary()).dictionary_encode()
    ip_no, user_no, good, ips, users = _split_heads(encoded)
    ref_ip, ref_user, ref_good, ref_ips, ref_users = cut_heads(encoded.dictionary.to_pylist())
    at = encoded.indices.to_pylist()
    assert (ips, users) == (ref_ips, ref_users)
    assert ip_no.type == user_no.type == pa.int32()
    assert ip_no.to_pylist() == [ref_ip[i] for i in at]
    assert user_no.to_pylist() == [ref_user[i] for i in at]
    assert good.to_pylist() == [ref_good[i] for i in at]
    # And an oracle of its own: three non-empty fields one space apart (ASCII rows).
    for row, ok in zip(rows, good.to_pylist(), strict=True):
        if row.isascii():
            parts = row.split(b" ")
            assert ok == (len(parts) == 3 and all(parts)), row


def test_lines_longer_than_a_chunk_and_a_truncated_last_line(tmp_path, monkeypatch):
    ok = (
        f'203.0.113.7 - PH0042 [29/Nov/2026:09:03:22 +0100] "GET /api/v1/beneficiaires/{NIR_A}'
        f'/droits HTTP/1.1" 200 512 "-" "{"x" * 3000}" "0.012" "s-1"'
    )
    data = "\n".join([ok, "", ok, ok[:50]]).encode()
    (tmp_path / "a.log").write_bytes(data)
    events, records, stats, _ = _same_everywhere([tmp_path / "a.log"], monkeypatch, chunk_size=1000)
    assert [e.line for e in events] == [1, 3]
    assert [(r[1], r[2]) for r in records] == [(4, "truncated")]
    assert stats["lines"] == 4


def _one_block(data: bytes) -> Block:
    blocks = list(iter_blocks(io.BytesIO(data + b"\n"), where="t", chunk_size=1 << 16))
    assert len(blocks) == 1
    return blocks[0]


def test_plain_blocks_are_cut_by_the_csv_tokenizer_and_the_others_are_not():
    ok = (
        '203.0.113.7 - PH0042 [29/Nov/2026:09:03:22 +0100] "GET /app/ HTTP/1.1" 200 512 "-"'
        ' "UA" "0.012" "s-1"'
    )
    lines = [
        ok,
        ok[:40],  # another width
        ok.replace('" "UA"', '"x"UA"'),  # not a space between two fields
        ok.replace('"UA"', '"U\\"A"'),  # another width (and a backslash)
        ok + " " + "x" * 500,  # too long
        ok,
    ]
    split = _split_fields(_one_block("\n".join(lines).encode()), max_chars=400)
    assert split is not None and split.lines == 6 and split.width == 11
    # Candidates: every line with 11 fields, not too long, without a backslash.
    assert split.rows.to_pylist() == [0, 2, 5]
    assert split.part(5).to_pylist() == ["UA", "UA", "UA"]
    assert split.plain_separators.to_pylist() == [True, False, True]
    assert split.raw([1, 2, 3, 4]) == [line.encode() for line in lines[1:5]]
    for other in (
        f"{ok}\r\n{ok}",  # a CR: the tokenizer would end a line there
        f"{ok}\n\n{ok}",  # a blank line: a row of empty fields, as bare quotes are
        f"\n{ok}",
        ok + "\n" + '"' * 10,  # bare quotes
        f"\ufeff{ok}",  # a BOM: the tokenizer would drop it
        f'"a"b\n{ok}',  # the first lines set the width: 3 fields here
    ):
        assert _split_fields(_one_block(other.encode()), max_chars=400) is None, other
    assert _split_fields(_one_block(ok.encode() + b"\xff"), max_chars=400) is None


def test_literals_are_the_scalars_pyarrow_infers() -> None:
    for value in (True, False, 0, 18, 1000, 1_000_000.0, "-", " ", "0"):
        assert _lit(value).equals(pa.scalar(value))
        assert _lit(value) is _lit(value)


@pytest.mark.parametrize(
    ("kind", "fmt", "values"),
    [
        (pa.int32(), "i", [0, 1, -2, 70_000, 2**31 - 1]),
        (pa.int64(), "q", [0, 9_013_702, -5, 2**40]),
        (pa.float64(), "d", [1.7e9, 0.5, -3.25, 1780000000.123]),
    ],
)
def test_column_bytes_are_the_values_little_endian_whatever_the_machine(
    kind, fmt, values, monkeypatch
) -> None:
    """What the compiled event loop reads: a sliced or chunked array gives its own values
    only, a narrower type is cast, and a big-endian machine's buffers are swapped."""
    n = len(values)
    little = struct.pack(f"<{n}{fmt}", *values)
    arr = pa.array([values[0], *values, values[0]], kind)
    sliced = arr.slice(1, n)
    assert le_bytes(sliced, kind) == little
    assert le_bytes(pa.chunked_array([sliced.slice(0, 2), sliced.slice(2)]), kind) == little
    narrow = pa.array([1, -2, 3], pa.int8())
    assert le_bytes(narrow, kind) == struct.pack(f"<3{fmt}", 1, -2, 3)
    if sys.byteorder == "little":
        # Seen as a big-endian machine, this machine's (little-endian) buffers are swapped.
        monkeypatch.setattr(sys, "byteorder", "big")
        assert le_bytes(sliced, kind) == struct.pack(f">{n}{fmt}", *values)


class _ImportSpy:
    """A meta path finder that records the modules Python searches for and finds none."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)


def test_a_warm_columnar_decode_searches_for_no_module(simulated, monkeypatch):
    # pyarrow infers the type of a Python value passed to a compute function by trying to
    # import python-dateutil; without it, each try searches sys.path again (0.1 ms). The
    # decode passes typed scalars instead: once warm, it imports nothing per chunk.
    log = simulated / "access.log"
    warm = list(iter_batches([log], tokenizer=TOKENIZER, chunk_size=256 << 10))
    spy = _ImportSpy()
    monkeypatch.setattr(sys, "meta_path", [spy, *sys.meta_path])
    again = list(iter_batches([log], tokenizer=TOKENIZER, chunk_size=256 << 10))
    assert len(again) == len(warm) > 3
    assert spy.names == []


def test_the_request_line_cache_is_bounded_and_starting_again_changes_no_result() -> None:
    """More distinct request lines than ``BY_LINE_MAX``: the cache is emptied when a call finds
    it full, so it never holds more than that and one call's lines (peak memory), and a line
    met again after that gets the same route, path and token."""
    from rempart.ingest.normalise import BY_LINE_MAX
    from rempart.ingest.pipeline import make_normalizer

    normalizer = make_normalizer("tiers-payant", TOKENIZER)
    lines = [f"GET /api/v1/actes?page={i} HTTP/1.1" for i in range(BY_LINE_MAX + 1000)]
    lines.append(f"GET /api/v1/paiements?nir={NIR_A} HTTP/1.1")
    first = normalizer.request_infos(lines[:1000] + lines[-1:])
    sizes = []
    for start in range(0, len(lines), 50_000):
        normalizer.request_infos(lines[start : start + 50_000])
        sizes.append(len(normalizer._by_line))
    assert max(sizes) < BY_LINE_MAX + 50_000
    assert max(sizes) >= BY_LINE_MAX  # (so these lines are kept)
    assert sizes[-1] < sizes[-2]  # it started again from empty on the way
    again = normalizer.request_infos(lines[:1000] + lines[-1:])
    assert [(i.route.name, i.path, i.query, i.token) for i in again if i] == [
        (i.route.name, i.path, i.query, i.token) for i in first if i
    ]
    assert len(again) == 1001 and all(again)


def test_rights_checks_are_not_kept_and_get_what_the_line_by_line_path_gives() -> None:
    """A rights check names its beneficiary (one line per beneficiary): ``request_infos``
    does not keep those lines, and gives them the route, path and token of ``request_info``,
    the first time and the next."""
    from rempart.ingest.pipeline import make_normalizer

    normalizer = make_normalizer("tiers-payant", TOKENIZER)
    reference = make_normalizer("tiers-payant", TOKENIZER)
    targets = [f"/api/v1/beneficiaires/{185_077_500_000_000 + i}/droits" for i in range(3000)]
    lines = [f"GET {t} HTTP/1.1" for t in targets]
    expected = [
        (i.route.name, i.method, i.path, i.query, i.token)
        for i in (reference.request_info("GET", t) for t in targets)
    ]
    assert {e[:4] for e in expected} == {
        ("rights-check", "GET", "/api/v1/beneficiaires/{beneficiary}/droits", None)
    }
    for _ in range(2):
        got = normalizer.request_infos(lines)
        assert [(i.route.name, i.method, i.path, i.query, i.token) for i in got if i] == expected
        assert len(normalizer._by_line) == 0
