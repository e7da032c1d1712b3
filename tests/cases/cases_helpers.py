"""Fixtures of the cases tests: events written to a Parquet archive in the ingestion's schema."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rempart.alerts import Alert, EntityType, EvidenceRef, Severity, alert_id
from rempart.cases.service import Cases
from rempart.cases.settings import CasesSettings
from rempart.events import EVENT_FIELDS, Event

T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 86400.0
LEGIT_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"
BOT_UA = "python-requests/2.31"
RIGHTS = ("identite", "sexe", "date_naissance", "nir", "organisme_complementaire", "garanties")


def archive_table(events: list[Event]) -> pa.Table:
    """The archive schema of contracts.md: Event attribute names, ts timestamp[us, UTC]."""
    cols: dict[str, list[object]] = {name: [] for name in EVENT_FIELDS}
    for ev in events:
        for name in cols:
            cols[name].append(getattr(ev, name))
    types = {
        "ts": pa.timestamp("us", tz="UTC"), "status": pa.int32(), "bytes": pa.int64(),
        "line": pa.int64(), "categories": pa.list_(pa.string()),
    }  # fmt: skip
    arrays = {}
    for name, values in cols.items():
        if name == "ts":
            values = [datetime.fromtimestamp(v, tz=UTC) for v in values]  # type: ignore[arg-type]
        elif name == "categories":
            values = [list(v) for v in values]  # type: ignore[call-overload]
        arrays[name] = pa.array(values, types.get(name, pa.string()))
    return pa.table(arrays)


def write_archive(events: Iterable[Event], root: Path, part: int = 0) -> Path:
    by_day: dict[str, list[Event]] = defaultdict(list)
    for ev in sorted(events, key=lambda e: (e.ts, e.line)):
        by_day[datetime.fromtimestamp(ev.ts, tz=UTC).date().isoformat()].append(ev)
    for day, evs in by_day.items():
        d = root / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(archive_table(evs), d / f"part-{part}.parquet")
    return root


class Log:
    """Builds events with increasing line numbers, as a log file would number them."""

    def __init__(self, source: str = "access.log") -> None:
        self.source = source
        self.events: list[Event] = []

    def _add(self, **kw: object) -> Event:
        ev = Event(source=self.source, line=len(self.events) + 1, **kw)  # type: ignore[arg-type]
        self.events.append(ev)
        return ev

    def login(self, account: str, ts: float, ip: str, ua: str, ok: bool = True) -> Event:
        return self._add(
            ts=ts,
            source_ip=ip,
            user_agent=ua,
            user_name=account,
            action="auth.login",
            outcome="success" if ok else "failure",
            method="POST",
            path="/auth/login",
            status=200 if ok else 401,
        )

    def read(self, account: str, token: str, ts: float, ip: str, ua: str, ok: bool = True) -> Event:
        return self._add(
            ts=ts,
            source_ip=ip,
            user_agent=ua,
            user_name=account,
            action="beneficiary.read",
            outcome="success" if ok else "failure",
            path="/api/v1/beneficiaires/{beneficiary}/droits",
            status=200 if ok else 404,
            beneficiary_token=token,
            categories=RIGHTS if ok else (),
            account_kind="pharmacie",
        )


def make_alert(
    rule: str,
    entity: str,
    first: float,
    last: float,
    *,
    accounts: list[str],
    ips: list[str],
    entity_type: EntityType = EntityType.ACCOUNT,
    severity: Severity = Severity.HIGH,
    evidence: list[EvidenceRef] | None = None,
    records: int = 0,
) -> Alert:
    return Alert(
        id=alert_id(rule, entity_type.value, entity, first),
        rule_id=rule,
        rule_version=1,
        severity=severity,
        title=f"{rule} on {entity}",
        entity_type=entity_type,
        entity=entity,
        first_seen=first,
        detected_at=last,
        last_seen=last,
        accounts=accounts,
        ips=ips,
        events=10,
        records_exposed=records,
        evidence=evidence or [],
    )


@pytest.fixture()
def cases_factory(tmp_path: Path):
    made: list[Cases] = []

    def make(events: Iterable[Event] | None = None, **settings: object) -> Cases:
        archive = tmp_path / "archive"
        if events is not None:
            write_archive(events, archive)
        c = Cases.open(f"sqlite:///{tmp_path}/state.db", archive, CasesSettings(**settings))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
