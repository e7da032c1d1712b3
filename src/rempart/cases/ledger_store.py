"""The compact ledger files: per day, the archive's disclosure and authentication rows, sorted by
account and time, in small row groups.

Why a copy, when the archive already holds these rows: the archive is in time order, so every
row group holds every account, and a question about one account ("what did PH0042 read, from
where, since when") decodes every row of every day (tens of seconds over 90 days of a large
portal). Sorted by account in 16,384-row groups, the same question reads one row group per day
(min/max statistics and a bloom filter on the account). Only what cases need is kept: the
disclosures (the ledger proper) and the logins (to date a compromise), with their origin.

The copy is derived, never edited: ``sync_ledger`` rebuilds a day when the set of archive part
files of that day changed (new parts in follow mode), and drops days the archive no longer has.
Each day is written to a temporary name and renamed, so readers never see half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import duckdb

from rempart.errors import StoreError

LEDGER_FILE = "ledger.parquet"
SIGNATURE_FILE = "_source.json"
ROW_GROUP = 16_384
#: Large enough for tokens to be dictionary-encoded per row group, so that DuckDB writes bloom
#: filters for them too: "who read this person's record" skips the row groups that cannot hold it.
DICTIONARY_LIMIT = 1_000_000
#: Columns of the compact ledger (archive names).
COLUMNS = (
    "ts", "user_name", "action", "outcome", "beneficiary_token", "categories", "source_ip",
    "user_agent", "session_id", "source", "line",
)  # fmt: skip
KEEP = "(len(categories) > 0 AND beneficiary_token IS NOT NULL) OR action LIKE 'auth.%'"

_sync_lock = threading.Lock()


def default_ledger_dir(archive_dir: Path) -> Path:
    """``/var/lib/rempart/archive`` -> ``/var/lib/rempart/archive-ledger``."""
    return archive_dir.with_name(archive_dir.name + "-ledger")


def _signature(day_dir: Path) -> list[list[object]]:
    return [
        [p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(day_dir.glob("*.parquet"))
    ]


def sync_ledger(con: duckdb.DuckDBPyConnection, archive_dir: Path, ledger_dir: Path) -> int:
    """Bring the compact ledger up to date with the archive; returns the days rebuilt."""
    if not archive_dir.is_dir():
        return 0
    rebuilt = 0
    with _sync_lock:
        try:
            ledger_dir.mkdir(parents=True, exist_ok=True)
            days = {p.name: p for p in archive_dir.glob("day=*") if p.is_dir()}
            for name in sorted(days):
                sig = _signature(days[name])
                target = ledger_dir / name
                sig_file = target / SIGNATURE_FILE
                if sig_file.exists() and json.loads(sig_file.read_text()) == sig:
                    continue
                target.mkdir(exist_ok=True)
                tmp = target / f".{LEDGER_FILE}.{os.getpid()}.tmp"
                files = [str(days[name] / str(s[0])) for s in sig]
                if files:
                    con.read_parquet(files, union_by_name=True).create_view("day_src", replace=True)
                    quoted = str(tmp).replace("'", "''")
                    # constant columns; the path is ours, quoted
                    statement = (
                        f"COPY (SELECT {', '.join(COLUMNS)} FROM day_src WHERE {KEEP} "  # noqa: S608
                        f"ORDER BY user_name, ts, source, line) TO '{quoted}' "
                        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP}, "
                        f"DICTIONARY_SIZE_LIMIT {DICTIONARY_LIMIT})"
                    )
                    con.execute(statement)
                    os.replace(tmp, target / LEDGER_FILE)
                else:
                    (target / LEDGER_FILE).unlink(missing_ok=True)
                sig_file.write_text(json.dumps(sig))
                rebuilt += 1
            for stale in ledger_dir.glob("day=*"):
                if stale.name not in days:
                    shutil.rmtree(stale, ignore_errors=True)
        except (OSError, duckdb.Error) as exc:
            raise StoreError(f"cannot update the ledger: {exc}", where=str(ledger_dir)) from None
    return rebuilt
