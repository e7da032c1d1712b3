"""The exposure ledger: every successful disclosure of a beneficiary's record to an account.

Rows: the archive's events whose ``categories`` is non-empty and whose ``beneficiary_token`` is
set (token, account, time, categories, client, origin: source and line), queried with DuckDB.

Design choice: a compact Parquet copy partitioned by day (``<archive>-ledger/day=*/``), derived
from the archive and kept in step with it (:mod:`rempart.cases.ledger_store`), rather than a view
over the archive itself. A plain view was the first version; measured at 90 days of 30,000
accounts (36 million rows, ``bench/cases_affected.py``) it took tens of seconds for one
account's question, because the archive is in time order and every row group holds every
account. Sorted by account in small row groups, one account's 90 days read one row group per
day. The copy also keeps logins (to date a compromise window) but drops what cases never read.

Everything here is exact: no sketches, plain ``SELECT DISTINCT``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rempart.cases.ledger_store import COLUMNS, LEDGER_FILE, default_ledger_dir, sync_ledger
from rempart.errors import StoreError

#: Columns of a ledger row (a subset of the archive's columns).
LEDGER_COLUMNS = (
    "ts",
    "user_name",
    "beneficiary_token",
    "categories",
    "action",
    "source_ip",
    "user_agent",
    "session_id",
    "source",
    "line",
)


def epoch(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, tz=UTC).date()


def _in(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
    """``column IN (?, ?, ...)``: a constant list DuckDB pushes into the Parquet scan (row
    groups pruned by statistics and bloom filters), unlike ``IN (SELECT unnest(?))``."""
    if len(values) > 2000:
        return f"{column} IN (SELECT unnest(?))", [list(values)]
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def _ts_literal(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@dataclass(frozen=True, slots=True)
class ActorFilter:
    """Restrict disclosures of one account to the (ip, user agent) pairs an actor used."""

    account: str
    start: float
    end: float
    #: ``None`` means every pair of the account (account attribution).
    pairs: frozenset[tuple[str, str | None]] | None = None


class ExposureLedger:
    """Queries over the disclosures (DuckDB, in process), on the compact ledger files kept in
    step with the archive (:mod:`rempart.cases.ledger_store`)."""

    def __init__(
        self,
        archive_dir: Path,
        *,
        ledger_dir: Path | None = None,
        threads: int | None = None,
        sync_every: float = 30.0,
    ) -> None:
        self.archive_dir = archive_dir.expanduser()
        self.ledger_dir = (ledger_dir or default_ledger_dir(self.archive_dir)).expanduser()
        self._con = duckdb.connect(":memory:")
        # Footers of the ledger files are read once per process, not once per query.
        self._con.execute("SET parquet_metadata_cache = true")
        if threads:
            self._con.execute(f"SET threads={int(threads)}")
        self._lock = threading.Lock()
        self._sync_every = sync_every
        self._synced_at = float("-inf")

    def close(self) -> None:
        self._con.close()

    def sync(self) -> int:
        """Rebuild the ledger days whose archive parts changed; returns how many."""
        with self._lock:
            days = sync_ledger(self._con, self.archive_dir, self.ledger_dir)
            self._synced_at = time.monotonic()
        return days

    # -- sources -------------------------------------------------------------------------

    def _files(self, start: float | None, end: float | None) -> list[str]:
        """Ledger files of the days overlapping [start, end] (partition pruning by name)."""
        if time.monotonic() - self._synced_at > self._sync_every:
            self.sync()
        if not self.ledger_dir.is_dir():
            return []
        # A follow-mode part sits in the day of its first event and may hold a few events of
        # the next day: look one folder earlier (``ts`` filters are exact anyway).
        lo = _day(start) - timedelta(days=1) if start is not None else None
        hi = _day(end) if end is not None else None
        files: list[str] = []
        for part in sorted(self.ledger_dir.glob("day=*")):
            try:
                d = date.fromisoformat(part.name.removeprefix("day="))
            except ValueError:
                continue
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                continue
            if (part / LEDGER_FILE).exists():
                files.append(str(part / LEDGER_FILE))
        return files

    def _run(
        self,
        start: float | None,
        end: float | None,
        sql: str,
        params: Sequence[Any] = (),
        tables: dict[str, pa.Table] | None = None,
    ) -> pa.Table | None:
        """Run ``sql`` over the view ``ledger`` of the days overlapping [start, end].

        Returns ``None`` when no Parquet file covers the range. File names go through DuckDB's
        ``read_parquet`` relation, values through bound parameters: nothing is spliced into SQL.
        """
        files = self._files(start, end)
        if not files:
            return None
        try:
            with self._lock:
                self._con.read_parquet(files).create_view("ledger", replace=True)
                for name, table in (tables or {}).items():
                    self._con.register(name, table)
                try:
                    return self._con.sql(sql, params=list(params)).to_arrow_table()
                finally:
                    for name in tables or {}:
                        self._con.unregister(name)
        except duckdb.Error as exc:
            raise StoreError(f"ledger query failed: {exc}", where=str(self.archive_dir)) from None

    def span(self) -> tuple[float, float] | None:
        """Bounds of the days the ledger covers: start of the first, end of the day after the
        last (a follow-mode part may spill into the next day). Read from the partition names, so
        it costs nothing; ``None`` when the ledger is empty."""
        files = self._files(None, None)
        if not files:
            return None
        days = sorted(date.fromisoformat(Path(f).parent.name.removeprefix("day=")) for f in files)
        lo = datetime.combine(days[0], datetime.min.time(), UTC).timestamp()
        hi = datetime.combine(days[-1], datetime.min.time(), UTC).timestamp() + 2 * 86400
        return lo, hi

    # -- raw events of accounts (windows, timelines) -------------------------------------

    def account_events(
        self, accounts: Iterable[str], start: float, end: float, columns: Sequence[str]
    ) -> pa.Table:
        """Ledger events (disclosures and logins) of ``accounts`` in [start, end]."""
        accts = sorted(set(accounts))
        names = ["user_name", *[c for c in columns if c != "user_name"]]
        unknown = set(names) - set(COLUMNS)
        if unknown:
            raise StoreError(f"not ledger columns: {', '.join(sorted(unknown))}")
        cond, values = _in("user_name", accts)
        sql = (
            f"SELECT {', '.join(names)} FROM ledger "  # noqa: S608 (names checked above)
            f"WHERE ts >= ? AND ts <= ? AND {cond} ORDER BY ts"
        )
        table = (
            self._run(start, end, sql, [_ts_literal(start), _ts_literal(end), *values])
            if accts
            else None
        )
        if table is None:
            return pa.table({c: pa.array([], type=pa.string()) for c in names})
        return table

    def fingerprints(self, accounts: Iterable[str], start: float, end: float) -> pa.Table:
        """Per (account, ip, user agent): first/last time, events, successful logins."""
        accts = sorted(set(accounts))
        cond, values = _in("user_name", accts)
        sql = f"""
            SELECT user_name, source_ip, user_agent,
                   epoch(min(ts)) AS first, epoch(max(ts)) AS last, count(*) AS events,
                   epoch(min(ts) FILTER (WHERE action = 'auth.login' AND outcome = 'success'))
                       AS first_login
            FROM ledger
            WHERE ts >= ? AND ts <= ? AND {cond}
            GROUP BY ALL ORDER BY first
        """  # noqa: S608 (placeholders only)
        table = (
            self._run(start, end, sql, [_ts_literal(start), _ts_literal(end), *values])
            if accts
            else None
        )
        if table is None:
            return pa.table(
                {
                    "user_name": pa.array([], pa.string()),
                    "source_ip": pa.array([], pa.string()),
                    "user_agent": pa.array([], pa.string()),
                    "first": pa.array([], pa.float64()),
                    "last": pa.array([], pa.float64()),
                    "events": pa.array([], pa.int64()),
                    "first_login": pa.array([], pa.float64()),
                }
            )
        return table

    # -- disclosures ---------------------------------------------------------------------

    def disclosures(
        self,
        *,
        start: float,
        end: float,
        accounts: Iterable[str] | None = None,
        tokens: Iterable[str] | None = None,
    ) -> pa.Table:
        """Who read whose record between ``start`` and ``end`` (inclusive), in time order."""
        where = ["ts >= ?", "ts <= ?", "len(categories) > 0", "beneficiary_token IS NOT NULL"]
        params: list[Any] = [_ts_literal(start), _ts_literal(end)]
        for column, values in (("user_name", accounts), ("beneficiary_token", tokens)):
            if values is not None:
                cond, bound = _in(column, sorted(set(values)))
                if not bound or bound == [[]]:
                    return _empty_ledger()
                where.append(cond)
                params.extend(bound)
        sql = (
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger "  # noqa: S608 (constant parts)
            f"WHERE {' AND '.join(where)} ORDER BY ts, source, line"
        )
        table = self._run(start, end, sql, params)
        return _empty_ledger() if table is None else table

    def scoped_disclosures(self, scopes: Sequence[ActorFilter]) -> pa.Table:
        """Disclosures matching any scope (account, window and optionally actor pairs)."""
        if not scopes:
            return _empty_ledger()
        start = min(s.start for s in scopes)
        end = max(s.end for s in scopes)
        rows: dict[str, list[Any]] = {
            "account": [],
            "start": [],
            "end": [],
            "ip": [],
            "ua": [],
            "any_pair": [],
        }
        for s in scopes:
            pairs: Iterable[tuple[str | None, str | None]] = (
                [(None, None)] if s.pairs is None else s.pairs
            )
            for ip, ua in pairs:
                rows["account"].append(s.account)
                rows["start"].append(_ts_literal(s.start))
                rows["end"].append(_ts_literal(s.end))
                rows["ip"].append(ip)
                rows["ua"].append(ua)
                rows["any_pair"].append(s.pairs is None)
        scope_table = pa.table(
            {
                "account": pa.array(rows["account"], pa.string()),
                "start": pa.array(rows["start"], pa.timestamp("us", tz="UTC")),
                "end": pa.array(rows["end"], pa.timestamp("us", tz="UTC")),
                "ip": pa.array(rows["ip"], pa.string()),
                "ua": pa.array(rows["ua"], pa.string()),
                "any_pair": pa.array(rows["any_pair"], pa.bool_()),
            }
        )
        sql = f"""
            SELECT DISTINCT {", ".join("d." + c for c in LEDGER_COLUMNS)}
            FROM ledger AS d JOIN scope_table AS s
              ON d.user_name = s.account AND d.ts >= s.start AND d.ts <= s."end"
             AND (s.any_pair OR (d.source_ip IS NOT DISTINCT FROM s.ip
                                 AND d.user_agent IS NOT DISTINCT FROM s.ua))
            WHERE d.ts >= ? AND d.ts <= ? AND len(d.categories) > 0
              AND d.beneficiary_token IS NOT NULL
            ORDER BY d.ts, d.source, d.line
        """  # noqa: S608 (constant column names)
        params = [_ts_literal(start), _ts_literal(end)]
        table = self._run(start, end, sql, params, {"scope_table": scope_table})
        return _empty_ledger() if table is None else table

    def pair_strangers(
        self, account: str, start: float, end: float
    ) -> dict[tuple[str, str | None], tuple[int, int]]:
        """Per (ip, user agent) of ``account``: disclosures, and those of people no other pair
        of the account read in [start, end] ("strangers": what harvesting looks like)."""
        sql = """
            WITH d AS (
                SELECT source_ip AS ip, user_agent AS ua, beneficiary_token AS t FROM ledger
                WHERE ts >= ? AND ts <= ? AND user_name = ? AND len(categories) > 0
                  AND beneficiary_token IS NOT NULL
            ), per_token AS (
                SELECT t, count(DISTINCT coalesce(ip, '') || '|' || coalesce(ua, '')) AS pairs
                FROM d GROUP BY t
            )
            SELECT ip, ua, count(*) AS n, count(*) FILTER (WHERE pairs = 1) AS strangers
            FROM d JOIN per_token USING (t) GROUP BY ip, ua
        """
        table = self._run(start, end, sql, [_ts_literal(start), _ts_literal(end), account])
        if table is None:
            return {}
        return {(r["ip"], r["ua"]): (r["n"], r["strangers"]) for r in table.to_pylist()}

    def served_before(self, account: str, before: float, days: float) -> set[str]:
        """Tokens disclosed to ``account`` in the ``days`` before ``before`` (exclusive)."""
        start = before - timedelta(days=days).total_seconds()
        sql = """
            SELECT DISTINCT beneficiary_token FROM ledger
            WHERE ts >= ? AND ts < ? AND user_name = ? AND len(categories) > 0
              AND beneficiary_token IS NOT NULL
        """
        table = self._run(start, before, sql, [_ts_literal(start), _ts_literal(before), account])
        return set() if table is None else set(table.column(0).to_pylist())


def _empty_ledger() -> pa.Table:
    return pa.table(
        {
            "ts": pa.array([], pa.timestamp("us", tz="UTC")),
            "user_name": pa.array([], pa.string()),
            "beneficiary_token": pa.array([], pa.string()),
            "categories": pa.array([], pa.list_(pa.string())),
            "action": pa.array([], pa.string()),
            "source_ip": pa.array([], pa.string()),
            "user_agent": pa.array([], pa.string()),
            "session_id": pa.array([], pa.string()),
            "source": pa.array([], pa.string()),
            "line": pa.array([], pa.int64()),
        }
    )
