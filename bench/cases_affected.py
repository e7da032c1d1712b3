"""Benchmark: affected people of an incident over 90 days of ledger for 30,000 accounts.

Generates (once, then reuses) a synthetic event archive in the ingestion's Parquet layout
(``DIR/day=YYYY-MM-DD/part-0.parquet``, the archive schema): ``--rows-per-day`` events a day
(85 % successful rights checks disclosing six data categories, 15 % logins), each account
reading mostly its own panel of patients from its own IP and client. On day ``--days - 10`` one
pharmacy is phished: a login from a hosting IP and a script client, then ``--harvest`` rights
checks of strangers over two days.

Then times, whole process, median of ``--runs`` runs (DuckDB on all cores of this machine):

- ``ledger build``: deriving the compact ledger from the archive (one-off here; in service, one
  day is rebuilt when its archive parts change);
- ``who read``: who read one beneficiary's record over the whole period;
- ``account``: every disclosure to the phished account over the whole period;
- ``affected``: ``Cases.affected`` of the incident (window estimation over the archive + the
  exact distinct list with counts by category), with and without ``--exclude-served-before``.

    .venv/bin/python bench/cases_affected.py                 # 30,000 accounts, 90 days
    .venv/bin/python bench/cases_affected.py --accounts 3000 --days 30 --rows-per-day 40000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rempart.alerts import Alert, EntityType, Severity, alert_id
from rempart.cases.ledger import ExposureLedger
from rempart.cases.service import Cases
from rempart.cases.settings import CasesSettings
from rempart.ingest.archive import SCHEMA

CATS = ["identite", "sexe", "date_naissance", "nir", "organisme_complementaire", "garanties"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "LGPI/2.31 (Pharmagest)",
    "Winpharma/8.4.2",
]
BOT_IP, BOT_UA = "203.0.113.7", "python-requests/2.31.0"
PANEL = 4000
START = date(2026, 1, 1)


def arange(n: int) -> pa.Array:
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)


def rand_int(n: int, high: int, seed: int) -> pa.Array:
    return pc.cast(pc.floor(pc.multiply(pc.random(n, initializer=seed), high)), pa.int64())


def token_dictionary(population: int) -> pa.Array:
    return pa.array([f"k1.{(i * 2654435761) % (1 << 80):020x}" for i in range(population)])


def day_table(
    day: int, n: int, names: pa.Array, ips: pa.Array, uas: pa.Array, tokens: pa.Array
) -> pa.Table:
    accounts = len(names)
    population = len(tokens)
    base_us = int(datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC)
                  .timestamp() * 1_000_000)  # fmt: skip
    ts = pc.add(rand_int(n, 86_400_000_000, day * 7 + 1), base_us)
    acct = rand_int(n, accounts, day * 7 + 2)
    reads = pc.less(pc.random(n, initializer=day * 7 + 3), 0.85)
    # each account reads mostly its own panel (repeat patients), sometimes a new one
    skew = pc.cast(pc.floor(pc.multiply(pc.power(pc.random(n, initializer=day * 7 + 4), 2.2),
                                        PANEL)), pa.int64())  # fmt: skip
    who = pc.bit_wise_and(pc.add(pc.multiply(acct, 7919), skew), (1 << 62) - 1)
    who = pc.subtract(who, pc.multiply(pc.divide(who, population), population))
    token = pc.if_else(reads, pc.take(tokens, who), pa.scalar(None, pa.string()))
    lengths = pc.if_else(reads, 6, 0).cast(pa.int32())
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(lengths).cast(pa.int32())]
    )
    total = pc.sum(lengths).as_py() or 0
    values = pc.take(
        pa.array(CATS), pc.subtract(arange(total), pc.multiply(pc.divide(arange(total), 6), 6))
    )
    categories = pa.ListArray.from_arrays(offsets, values)
    action = pc.if_else(reads, "beneficiary.read", "auth.login")
    table = pa.table(
        {
            "ts": ts.cast(pa.timestamp("us", tz="UTC")),
            "source_ip": pc.take(ips, acct),
            "action": action,
            "outcome": pa.repeat(pa.scalar("success"), n),
            "user_name": pc.take(names, acct),
            "organization_id": pa.nulls(n, pa.string()),
            "user_agent": pc.take(uas, acct),
            "method": pc.if_else(reads, "GET", "POST"),
            "path": pc.if_else(reads, "/api/v1/beneficiaires/{beneficiary}/droits", "/auth/login"),
            "query": pa.nulls(n, pa.string()),
            "status": pa.repeat(pa.scalar(200, pa.int32()), n),
            "bytes": pa.repeat(pa.scalar(1800, pa.int64()), n),
            "session_id": pa.nulls(n, pa.string()),
            "beneficiary_token": token,
            "categories": categories,
            "account_kind": pa.repeat(pa.scalar("pharmacie"), n),
            "source": pa.repeat(pa.scalar(f"access-{day:03d}.log"), n),
            "line": pc.add(arange(n), 1),
        },
        schema=SCHEMA,
    )
    return table.take(pc.sort_indices(table, [("ts", "ascending")]))


def harvest_table(day: int, victim: str, count: int, tokens: pa.Array) -> pa.Table:
    t0 = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC).timestamp()
    t0 += 2 * 3600
    rows: dict[str, list[object]] = {f.name: [] for f in SCHEMA}
    step = 2 * 86400 / count
    for i in range(count + 1):
        login = i == 0
        ts = datetime.fromtimestamp(t0 + i * step, UTC)
        who = (len(tokens) // 2 + i * 104729) % len(tokens)
        values = {
            "ts": ts, "source_ip": BOT_IP, "action": "auth.login" if login else "beneficiary.read",
            "outcome": "success", "user_name": victim, "organization_id": None,
            "user_agent": BOT_UA, "method": "POST" if login else "GET",
            "path": "/auth/login" if login else "/api/v1/beneficiaires/{beneficiary}/droits",
            "query": None, "status": 200, "bytes": 1800, "session_id": None,
            "beneficiary_token": None if login else tokens[who].as_py(),
            "categories": [] if login else CATS, "account_kind": "pharmacie",
            "source": f"access-{day:03d}.log", "line": 10_000_000 + i,
        }  # fmt: skip
        for k, v in values.items():
            rows[k].append(v)
    return pa.table(rows, schema=SCHEMA)


def generate(root: Path, accounts: int, days: int, per_day: int, harvest: int) -> dict[str, object]:
    marker = root / "DONE"
    names = pa.array([f"PH{i:06d}" for i in range(accounts)])
    victim = names[accounts // 3].as_py()
    attack_day = days - 10
    if marker.exists():
        return {"victim": victim, "attack_day": attack_day}
    tokens = token_dictionary(max(2_000_000, accounts * 60))
    ips = pa.array([f"{80 + i % 20}.{(i // 20) % 250}.{(i // 5000) % 250}.{1 + i % 250}"
                    for i in range(accounts)])  # fmt: skip
    uas = pa.array([UAS[i % len(UAS)] for i in range(accounts)])
    began = time.perf_counter()
    for day in range(days):
        table = day_table(day, per_day, names, ips, uas, tokens)
        folder = root / f"day={(START + timedelta(days=day)).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet", compression="zstd")
        if day == attack_day:
            pq.write_table(harvest_table(day, victim, harvest, tokens),
                           folder / "part-1.parquet", compression="zstd")  # fmt: skip
        print(f"\rgenerated day {day + 1}/{days}", end="", flush=True)
    print(f"\rgenerated {days} days x {per_day:,} rows in {time.perf_counter() - began:.0f} s")
    marker.write_text("ok")
    return {"victim": victim, "attack_day": attack_day}


def median_time(fn, runs: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--accounts", type=int, default=30_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--rows-per-day", type=int, default=400_000)
    ap.add_argument("--harvest", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "rempart-bench-cases")
    args = ap.parse_args()
    root = args.dir / f"a{args.accounts}-d{args.days}-r{args.rows_per_day}-h{args.harvest}"
    info = generate(root / "archive", args.accounts, args.days, args.rows_per_day, args.harvest)
    victim, attack_day = str(info["victim"]), int(info["attack_day"])  # type: ignore[call-overload]
    files = list((root / "archive").rglob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    size = sum(f.stat().st_size for f in files)
    print(f"archive: {rows:,} rows, {len(files)} files, {size / 2**20:,.0f} MiB ({root})")

    t0 = datetime.combine(START + timedelta(days=attack_day), datetime.min.time(), UTC)
    t0s = t0.timestamp() + 2 * 3600
    alert = Alert(
        id=alert_id("TP-HARV-001", "account", victim, t0s + 60), rule_id="TP-HARV-001",
        rule_version=1, severity=Severity.CRITICAL, title="Machine-speed reading",
        entity_type=EntityType.ACCOUNT, entity=victim, first_seen=t0s + 60,
        detected_at=t0s + 600, last_seen=t0s + 86400, accounts=[victim], ips=[BOT_IP],
    )  # fmt: skip
    ledger = ExposureLedger(root / "archive")
    began = time.perf_counter()
    days = ledger.sync()
    built = time.perf_counter() - began
    print(
        f"ledger build: {days} day(s) in {built:.0f} s (one-off; then one day per new archive part)"
    )
    if days == args.days:
        print(f"  = {built / days:.1f} s per day of {args.rows_per_day:,} events")
    lfiles = list(ledger.ledger_dir.rglob("*.parquet"))
    lrows = sum(pq.ParquetFile(f).metadata.num_rows for f in lfiles)
    lsize = sum(f.stat().st_size for f in lfiles)
    print(f"ledger: {lrows:,} rows, {lsize / 2**20:,.0f} MiB")
    db = root / "state.db"
    db.unlink(missing_ok=True)
    cases = Cases.open(f"sqlite:///{db}", root / "archive", CasesSettings())
    inc = cases.store.open_from_alerts([alert], actor="bench").created[0]
    lo = datetime.combine(START, datetime.min.time(), UTC).timestamp()
    hi = lo + args.days * 86400
    some_token = ledger.disclosures(start=t0s, end=t0s + 3600, accounts=[victim])
    token = some_token.column("beneficiary_token")[0].as_py()

    s, table = median_time(lambda: ledger.disclosures(start=lo, end=hi, tokens=[token]), args.runs)
    print(f"who read one record over {args.days} days: {s:.2f} s ({table.num_rows} rows)")  # type: ignore[attr-defined]
    s, table = median_time(
        lambda: ledger.disclosures(start=lo, end=hi, accounts=[victim]), args.runs
    )
    print(f"every disclosure to one account over {args.days} days: {s:.2f} s "
          f"({table.num_rows:,} rows)")  # type: ignore[attr-defined]  # fmt: skip
    s, aff = median_time(lambda: cases.affected(inc), args.runs)
    print(f"affected people of the incident: {s:.2f} s -> {aff.count:,} people, "  # type: ignore[attr-defined]
          f"{aff.records:,} records")  # type: ignore[attr-defined]  # fmt: skip
    s, aff2 = median_time(lambda: cases.affected(inc, exclude_served_before=True), args.runs)
    print(f"affected, excluding people served before: {s:.2f} s -> {aff2.count:,} people "  # type: ignore[attr-defined]
          f"({aff2.excluded} left out)")  # type: ignore[attr-defined]  # fmt: skip
    assert aff.count == args.harvest, (aff.count, args.harvest)  # type: ignore[attr-defined]
    cases.close()
    ledger.close()


if __name__ == "__main__":
    main()
