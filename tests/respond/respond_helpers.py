from __future__ import annotations

import itertools
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
