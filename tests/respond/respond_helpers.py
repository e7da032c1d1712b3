from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from rempart.alerts import Alert, EntityType, Severity, alert_id

T0 = 1_780_000_000.0


class FakeClock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_counter = itertools.count(1)


def make_alert(
    rule_id: str = "harvest.distinct_beneficiaries",
    *,
    severity: Severity = Severity.HIGH,
    entity_type: EntityType = EntityType.ACCOUNT,
    entity: str = "PH0042",
    accounts: list[str] | None = None,
    ips: list[str] | None = None,
    tags: list[str] | None = None,
    at: float = T0,
    **extra: Any,
) -> Alert:
    first = at - next(_counter)  # distinct ids for distinct alerts
    if accounts is None:
        accounts = [entity] if entity_type is EntityType.ACCOUNT else []
    return Alert(
        id=alert_id(rule_id, entity_type.value, entity, first),
        rule_id=rule_id,
        rule_version=1,
        severity=severity,
        title=f"{rule_id} on {entity}",
        entity_type=entity_type,
        entity=entity,
        first_seen=first,
        detected_at=at,
        last_seen=at,
        accounts=accounts,
        ips=ips if ips is not None else ["203.0.113.7"],
        tags=tags if tags is not None else ["harvest"],
        **extra,
    )


def nir(i: int) -> str:
    """A NIR-shaped identifier (13 digits + 2-digit key), distinct per ``i``."""
    body = f"1{85 + i % 10:02d}{(i % 12) + 1:02d}75{i % 1000:03d}{i // 1000 % 1000:03d}"
    key = 97 - int(body) % 97
    return f"{body}{key:02d}"


def ecs_line(
    account: str | None,
    ip: str,
    *,
    path: str,
    ts: float,
    status: int = 200,
    method: str = "GET",
    session: str | None = "s-1",
    action: str | None = None,
) -> str:
    import json

    doc: dict[str, Any] = {
        "@timestamp": ts,
        "source.ip": ip,
        "http.request.method": method,
        "url.path": path,
        "http.response.status_code": status,
    }
    if account:
        doc["user.name"] = account
    if session:
        doc["session.id"] = session
    if action:
        doc["event.action"] = action
    from datetime import UTC, datetime

    doc["@timestamp"] = datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(doc)


def harvest_lines(
    account: str, ip: str, n: int, *, start: float, step: float = 0.5, offset: int = 0
) -> list[str]:
    return [
        ecs_line(
            account, ip, path=f"/api/v1/beneficiaires/{nir(offset + i)}/droits", ts=start + i * step
        )
        for i in range(n)
    ]


def make_config(tmp: Path, **response: Any) -> Any:
    from rempart.config import Config, StateSettings
    from rempart.respond.settings import ResponseSettings

    return Config(
        state=StateSettings(
            url=f"sqlite:///{tmp / 'state.db'}",
            archive_dir=tmp / "archive",
            quarantine_dir=tmp / "quarantine",
        ),
        response=ResponseSettings(**response),
    )
