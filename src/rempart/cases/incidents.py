"""Incidents: alerts grouped by entity and campaign, their lifecycle, and every change audited.

Grouping. Each alert has keys: ``account:<name>`` for each account it names (its entity when
the entity is an account), plus ``net:<network>`` for its IPs when the alert is about an IP or a
campaign (or names no account). Alerts taken in event-time order join the group whose keys they
share, provided the group's last alert is at most ``merge_gap_days`` older; an alert that links
several new groups (a campaign alert naming forty accounts) merges them. Open incidents already
stored take part too; closed ones never absorb new alerts. Re-reading the same alert (same
deterministic id, e.g. an updated count) updates it in place.

Lifecycle: new -> triage -> contained -> notified -> closed. Moves go forward (skipping allowed:
a false positive goes straight to closed); a closed incident can only be reopened to triage.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from rempart.alerts import Alert, EntityType, Severity
from rempart.cases import audit
from rempart.cases.models import STATUSES, IncidentAlertRow, IncidentRow
from rempart.cases.settings import CasesSettings
from rempart.cases.window import DAY, iso, network_of
from rempart.errors import NotFoundError, RempartError


class IncidentError(RempartError):
    """An incident change that is not allowed (bad transition, bad window)."""


#: Analyst-editable fields of the breach documents.
DETAIL_FIELDS = {
    "nature": "nature of the breach (free text, French)",
    "consequences": "likely consequences (free text, French)",
    "measures_taken": "measures taken (list, French)",
    "measures_proposed": "measures proposed (list, French)",
    "late_reason": "reasons for notifying after the deadline (French)",
    "notification_kind": "'initiale' or 'complementaire'",
    "cnil_reference": "reference of the initial notification (complementary notifications)",
}


@dataclass(slots=True)
class Incident:
    id: int
    title: str
    status: str
    severity: str
    assignee: str | None
    created_at: float
    updated_at: float
    first_seen: float
    last_seen: float
    accounts: list[str]
    ips: list[str]
    aware_at: float
    contained_at: float | None
    notified_at: float | None
    closed_at: float | None
    attribution: str
    window_override: dict[str, Any]
    details: dict[str, Any]
    alerts: list[Alert] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "assignee": self.assignee,
            "accounts": list(self.accounts),
            "ips": list(self.ips),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "alerts": len(self.alerts),
        }


@dataclass(slots=True)
class OpenResult:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    alerts_added: int = 0
    alerts_updated: int = 0


def alert_keys(alert: Alert, settings: CasesSettings) -> set[str]:
    """Keys that join alerts into one incident.

    Alerts join on the accounts they accuse (``accounts``: for an IP or a client campaign, only
    the accounts that logged in successfully from the attacker). The accounts merely *tried*
    (``targets``: spraying, stuffing) are victims, not actors: joining on them would merge every
    later alert of thousands of accounts into one incident and count their legitimate reads as
    exposed. IP and campaign alerts also join on their network.
    """
    accounts = set(alert.accounts)
    if alert.entity_type == EntityType.ACCOUNT:
        accounts.add(alert.entity)
    keys = {f"account:{a}" for a in accounts}
    if alert.entity_type in (EntityType.IP, EntityType.CAMPAIGN) or not accounts:
        ips = set(alert.ips)
        if alert.entity_type == EntityType.IP:
            ips.add(alert.entity)
        keys |= {f"net:{network_of(ip, settings.ipv4_prefix, settings.ipv6_prefix)}" for ip in ips}
    if not keys:
        keys.add(f"{alert.entity_type.value}:{alert.entity}")
    return keys


def _accounts(alert: Alert) -> set[str]:
    out = set(alert.accounts)
    if alert.entity_type == EntityType.ACCOUNT:
        out.add(alert.entity)
    return out


def _to_incident(row: IncidentRow, alerts: Sequence[Alert]) -> Incident:
    return Incident(
        id=row.id,
        title=row.title,
        status=row.status,
        severity=row.severity,
        assignee=row.assignee,
        created_at=row.created_at,
        updated_at=row.updated_at,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        accounts=list(row.accounts),
        ips=list(row.ips),
        aware_at=row.aware_at,
        contained_at=row.contained_at,
        notified_at=row.notified_at,
        closed_at=row.closed_at,
        attribution=row.attribution,
        window_override=dict(row.window_override or {}),
        details=dict(row.details or {}),
        alerts=list(alerts),
    )


@dataclass(slots=True)
class _Group:
    keys: set[str]
    first_seen: float
    last_seen: float
    alerts: list[Alert]
    row: IncidentRow | None = None


class IncidentStore:
    """Library API over incidents (the CLI and the web API are thin shells over it)."""

    def __init__(self, sessions: sessionmaker[Session], settings: CasesSettings) -> None:
        self.sessions = sessions
        self.settings = settings

    # -- reading -------------------------------------------------------------------------

    def _row(self, session: Session, incident_id: int) -> IncidentRow:
        row = session.get(IncidentRow, incident_id)
        if row is None:
            raise NotFoundError(f"no incident {incident_id}", hint="rempart incident list")
        return row

    def _alerts(self, session: Session, incident_id: int) -> list[Alert]:
        rows = session.scalars(
            select(IncidentAlertRow)
            .where(IncidentAlertRow.incident_id == incident_id)
            .order_by(IncidentAlertRow.first_seen, IncidentAlertRow.alert_id)
        )
        return [Alert.from_dict(r.data) for r in rows]

    def get(self, incident_id: int) -> Incident:
        with self.sessions() as s:
            row = self._row(s, incident_id)
            return _to_incident(row, self._alerts(s, incident_id))

    def list_incidents(self, status: str | None = None) -> list[Incident]:
        with self.sessions() as s:
            stmt = select(IncidentRow).order_by(IncidentRow.id)
            if status is not None:
                stmt = stmt.where(IncidentRow.status == status)
            return [_to_incident(r, self._alerts(s, r.id)) for r in s.scalars(stmt)]

    def audit_trail(self, incident_id: int | None = None) -> list[audit.AuditEntry]:
        with self.sessions() as s:
            return audit.entries(s, incident_id)

    def verify_audit(self) -> tuple[bool, str]:
        with self.sessions() as s:
            return audit.verify_chain(s)

    # -- grouping ------------------------------------------------------------------------

    def open_from_alerts(self, alerts: Iterable[Alert], *, actor: str) -> OpenResult:
        """Attach alerts to open incidents or create new ones; return what changed."""
        result = OpenResult()
        gap = self.settings.merge_gap_days * DAY
        with self.sessions.begin() as s:
            alerts = list(alerts)
            ids = [a.id for a in alerts]
            known: dict[str, IncidentAlertRow] = {}
            for i in range(0, len(ids), 500):
                stmt = select(IncidentAlertRow).where(
                    IncidentAlertRow.alert_id.in_(ids[i : i + 500])
                )
                known.update((r.alert_id, r) for r in s.scalars(stmt))
            groups: list[_Group] = []
            for row in s.scalars(select(IncidentRow).where(IncidentRow.status != "closed")):
                groups.append(_Group(set(row.keys), row.first_seen, row.last_seen, [], row))
            fresh: list[Alert] = []
            for alert in sorted(alerts, key=lambda a: (a.first_seen, a.id)):
                old = known.get(alert.id)
                if old is None:
                    fresh.append(alert)
                    continue
                if old.data != alert.to_dict():
                    old.data = alert.to_dict()
                    result.alerts_updated += 1
                    inc = self._row(s, old.incident_id)
                    self._absorb(inc, [alert])
                    if inc.id not in result.updated:
                        result.updated.append(inc.id)
            for alert in fresh:
                keys = alert_keys(alert, self.settings)
                hits = [
                    g
                    for g in groups
                    if g.keys & keys
                    and g.last_seen >= alert.first_seen - gap
                    and g.first_seen <= alert.last_seen + gap
                ]
                if not hits:
                    groups.append(_Group(keys, alert.first_seen, alert.last_seen, [alert]))
                    continue
                target = next((g for g in hits if g.row is not None), hits[0])
                for other in hits:
                    if other is not target and other.row is None:
                        target.alerts.extend(other.alerts)
                        target.keys |= other.keys
                        target.first_seen = min(target.first_seen, other.first_seen)
                        target.last_seen = max(target.last_seen, other.last_seen)
                        groups.remove(other)
                target.alerts.append(alert)
                target.keys |= keys
                target.first_seen = min(target.first_seen, alert.first_seen)
                target.last_seen = max(target.last_seen, alert.last_seen)
            now = time.time()
            for g in groups:
                if not g.alerts:
                    continue
                if g.row is None:
                    row = self._create(s, g, now)
                    result.created.append(row.id)
                    audit.append(
                        s,
                        row.id,
                        actor,
                        "incident.open",
                        {
                            "alerts": [a.id for a in g.alerts],
                            "accounts": row.accounts,
                            "keys": row.keys,
                        },
                    )
                else:
                    row = g.row
                    self._absorb(row, g.alerts)
                    row.keys = sorted(set(row.keys) | g.keys)
                    if row.id not in result.updated:
                        result.updated.append(row.id)
                    audit.append(
                        s,
                        row.id,
                        actor,
                        "incident.alerts_added",
                        {"alerts": [a.id for a in g.alerts]},
                    )
                for a in g.alerts:
                    s.add(
                        IncidentAlertRow(
                            alert_id=a.id,
                            incident_id=row.id,
                            rule_id=a.rule_id,
                            first_seen=a.first_seen,
                            data=a.to_dict(),
                        )
                    )
                result.alerts_added += len(g.alerts)
                row.updated_at = now
        return result

    def _create(self, s: Session, g: _Group, now: float) -> IncidentRow:
        top = max(g.alerts, key=lambda a: (Severity(a.severity).rank, a.records_exposed))
        accounts = sorted(set().union(*(_accounts(a) for a in g.alerts)))
        title = top.title or top.rule_id
        if len(accounts) > 1:
            title = f"{title} ({len(accounts)} accounts)"
        elif accounts and accounts[0] not in title:
            title = f"{title}: {accounts[0]}"
        row = IncidentRow(
            title=title[:256],
            status="new",
            severity=top.severity.value,
            assignee=None,
            created_at=now,
            updated_at=now,
            first_seen=min(a.first_seen for a in g.alerts),
            last_seen=max(a.last_seen for a in g.alerts),
            accounts=accounts,
            ips=sorted({ip for a in g.alerts for ip in a.ips}),
            keys=sorted(g.keys),
            aware_at=min(a.detected_at for a in g.alerts),
            attribution=self.settings.attribution,
            window_override={},
            details={},
        )
        s.add(row)
        s.flush()
        return row

    @staticmethod
    def _absorb(row: IncidentRow, alerts: Sequence[Alert]) -> None:
        row.first_seen = min([row.first_seen, *(a.first_seen for a in alerts)])
        row.last_seen = max([row.last_seen, *(a.last_seen for a in alerts)])
        row.accounts = sorted(set(row.accounts).union(*(_accounts(a) for a in alerts)))
        row.ips = sorted(set(row.ips) | {ip for a in alerts for ip in a.ips})
        ranks = [Severity(row.severity).rank, *(Severity(a.severity).rank for a in alerts)]
        row.severity = next(s.value for s in Severity if s.rank == max(ranks))

    # -- changes (each one audited) ------------------------------------------------------

    def _change(
        self, incident_id: int, actor: str, action: str, details: dict[str, Any], apply: Any
    ) -> Incident:
        with self.sessions.begin() as s:
            row = self._row(s, incident_id)
            apply(row)
            row.updated_at = time.time()
            audit.append(s, incident_id, actor, action, details)
        return self.get(incident_id)

    def transition(
        self, incident_id: int, status: str, *, actor: str, reason: str | None = None
    ) -> Incident:
        if status not in STATUSES:
            raise IncidentError(f"unknown status {status!r}", hint=" -> ".join(STATUSES))
        current = self.get(incident_id).status
        old, new = STATUSES.index(current), STATUSES.index(status)
        if new <= old and not (current == "closed" and status == "triage"):
            raise IncidentError(
                f"incident {incident_id} is {current}: cannot go to {status}",
                hint="statuses move forward; a closed incident can be reopened to triage",
            )

        def apply(row: IncidentRow) -> None:
            now = time.time()
            row.status = status
            if status == "contained" and row.contained_at is None:
                row.contained_at = now
            elif status == "notified" and row.notified_at is None:
                row.notified_at = now
            elif status == "closed":
                row.closed_at = now

        return self._change(
            incident_id,
            actor,
            "incident.status",
            {"from": current, "to": status, "reason": reason},
            apply,
        )

    def assign(self, incident_id: int, assignee: str | None, *, actor: str) -> Incident:
        before = self.get(incident_id).assignee

        def apply(row: IncidentRow) -> None:
            row.assignee = assignee

        return self._change(
            incident_id, actor, "incident.assign", {"from": before, "to": assignee}, apply
        )

    def add_note(self, incident_id: int, text: str, *, actor: str) -> Incident:
        if not text.strip():
            raise IncidentError("an empty note adds nothing")
        return self._change(incident_id, actor, "incident.note", {"text": text}, lambda r: None)

    def set_window(
        self, incident_id: int, account: str, start: float, end: float, *, actor: str, reason: str
    ) -> Incident:
        """Replace the estimated window of ``account`` (the reason is kept in the audit)."""
        if end <= start:
            raise IncidentError("window end must be after its start")
        if not reason.strip():
            raise IncidentError("say why the window is changed (--reason)")
        inc = self.get(incident_id)
        if account not in inc.accounts:
            raise IncidentError(
                f"{account} is not an account of incident {incident_id}",
                hint=", ".join(inc.accounts) or "no account",
            )

        def apply(row: IncidentRow) -> None:
            override = dict(row.window_override or {})
            override[account] = {"start": start, "end": end, "reason": reason}
            row.window_override = override

        return self._change(
            incident_id,
            actor,
            "incident.window",
            {
                "account": account,
                "start": iso(start),
                "end": iso(end),
                "reason": reason,
                "previous": inc.window_override.get(account),
            },
            apply,
        )

    def set_awareness(self, incident_id: int, at: float, *, actor: str, reason: str) -> Incident:
        before = self.get(incident_id).aware_at

        def apply(row: IncidentRow) -> None:
            row.aware_at = at

        return self._change(
            incident_id,
            actor,
            "incident.awareness",
            {"from": iso(before), "to": iso(at), "reason": reason},
            apply,
        )

    def set_attribution(self, incident_id: int, mode: str, *, actor: str) -> Incident:
        if mode not in ("actor", "account"):
            raise IncidentError(f"unknown attribution {mode!r}", hint="actor or account")
        before = self.get(incident_id).attribution

        def apply(row: IncidentRow) -> None:
            row.attribution = mode

        return self._change(
            incident_id, actor, "incident.attribution", {"from": before, "to": mode}, apply
        )

    def set_detail(self, incident_id: int, name: str, value: Any, *, actor: str) -> Incident:
        if name not in DETAIL_FIELDS:
            raise IncidentError(f"unknown field {name!r}", hint=", ".join(DETAIL_FIELDS))
        if name == "notification_kind" and value not in ("initiale", "complementaire"):
            raise IncidentError("notification_kind is 'initiale' or 'complementaire'")
        before = self.get(incident_id).details.get(name)

        def apply(row: IncidentRow) -> None:
            details = dict(row.details or {})
            details[name] = value
            row.details = details

        return self._change(
            incident_id,
            actor,
            "incident.detail",
            {"field": name, "from": before, "to": value},
            apply,
        )

    def record(
        self, incident_id: int | None, *, actor: str, action: str, details: dict[str, Any]
    ) -> audit.AuditEntry:
        """Audit an action on an incident that changes no field (report, export, reidentify)."""
        with self.sessions.begin() as s:
            if incident_id is not None:
                self._row(s, incident_id)
            return audit.append(s, incident_id, actor, action, details)
