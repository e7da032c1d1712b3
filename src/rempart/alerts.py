"""Alerts are data: what detection emits, what policy, cases and notifications consume.

An ``Alert`` is keyed by ``(rule_id, entity_type, entity)``; when the same rule fires again for the
same entity while the alert is open, the engine updates the alert (counts, last_seen, evidence)
instead of emitting a new one, and bumps ``updates``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self.value]


_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class EntityType(StrEnum):
    ACCOUNT = "account"
    IP = "ip"
    ORGANIZATION = "organization"
    SESSION = "session"
    CAMPAIGN = "campaign"


@dataclass(slots=True, frozen=True)
class EvidenceRef:
    """Where an event came from: source name and 1-based line number."""

    source: str
    line: int


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def alert_id(rule_id: str, entity_type: str, entity: str, first_seen: float) -> str:
    """Deterministic alert id: replay and streaming give the same ids."""
    raw = f"{rule_id}|{entity_type}|{entity}|{first_seen:.6f}".encode()
    return "al-" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    """One detection, possibly updated as more events confirm it."""

    id: str
    rule_id: str
    rule_version: int
    severity: Severity
    title: str
    entity_type: EntityType
    entity: str
    #: Event time of the first event that contributed to the alert.
    first_seen: float
    #: Event time at which the rule's condition first held (the detection time).
    detected_at: float
    #: Event time of the latest contributing event (moves on updates).
    last_seen: float
    #: Accounts the alert accuses: the entity's own, a campaign's, or an account that logged
    #: in successfully from an attacking address or client (compromised).
    accounts: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    #: Accounts *tried* by the entity (spraying, stuffing): victims, not accused, until one of
    #: them logs in successfully from the attacker (then it is also in ``accounts``).
    targets: list[str] = field(default_factory=list)
    #: Events that contributed so far.
    events: int = 0
    #: Distinct beneficiaries disclosed to the entity's accounts so far (when relevant).
    records_exposed: int = 0
    explanation: str = ""
    technique: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    evidence: list[EvidenceRef] = field(default_factory=list)
    #: Rule-specific figures (observed value, baseline, peers' p95, novelty share...).
    metrics: dict[str, float] = field(default_factory=dict)
    updates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule_id,
            "rule_version": self.rule_version,
            "severity": self.severity.value,
            "title": self.title,
            "entity_type": self.entity_type.value,
            "entity": self.entity,
            "accounts": list(self.accounts),
            "ips": list(self.ips),
            "targets": list(self.targets),
            "first_seen": _iso(self.first_seen),
            "detected_at": _iso(self.detected_at),
            "last_seen": _iso(self.last_seen),
            "events": self.events,
            "records_exposed": self.records_exposed,
            "explanation": self.explanation,
            "technique": list(self.technique),
            "tags": list(self.tags),
            "evidence": [{"source": e.source, "line": e.line} for e in self.evidence],
            "metrics": dict(self.metrics),
            "updates": self.updates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        def ts(value: str) -> float:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

        return cls(
            id=data["id"],
            rule_id=data["rule"],
            rule_version=int(data["rule_version"]),
            severity=Severity(data["severity"]),
            title=data.get("title", ""),
            entity_type=EntityType(data["entity_type"]),
            entity=data["entity"],
            first_seen=ts(data["first_seen"]),
            detected_at=ts(data["detected_at"]),
            last_seen=ts(data.get("last_seen", data["detected_at"])),
            accounts=list(data.get("accounts", [])),
            ips=list(data.get("ips", [])),
            targets=list(data.get("targets", [])),
            events=int(data.get("events", 0)),
            records_exposed=int(data.get("records_exposed", 0)),
            explanation=data.get("explanation", ""),
            technique=list(data.get("technique", [])),
            tags=list(data.get("tags", [])),
            evidence=[EvidenceRef(e["source"], int(e["line"])) for e in data.get("evidence", [])],
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
            updates=int(data.get("updates", 0)),
        )
