"""The timeline of an incident: logins, network and client changes, read rate, alerts, decisions,
analysts' actions.

The archive part covers one day before the earliest window to one day after the latest. Failed
logins are folded per account, hour and address. Decisions come from the response layer's
``respond_decisions`` table when it exists in the same database (skipped otherwise).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.cases.audit import AuditEntry
from rempart.cases.incidents import Incident
from rempart.cases.ledger import ExposureLedger
from rempart.cases.settings import CasesSettings
from rempart.cases.window import DAY, AccountWindow, iso, network_of

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: float
    kind: str
    text: str
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso(self.ts), "kind": self.kind, "account": self.account, "text": self.text}


@dataclass(slots=True)
class Timeline:
    entries: list[TimelineEntry] = field(default_factory=list)
    #: (hour start, account, disclosures by the actor, other disclosures)
    read_rate: list[tuple[float, str, int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "read_rate_per_hour": [
                {"hour": iso(h), "account": a, "actor": n, "other": o}
                for h, a, n, o in self.read_rate
            ],
        }


def _archive_entries(
    ledger: ExposureLedger, windows: Sequence[AccountWindow], settings: CasesSettings
) -> Timeline:
    out = Timeline()
    if not windows:
        return out
    start = min(w.start for w in windows) - DAY
    end = max(w.end for w in windows) + DAY
    cols = ["ts", "action", "outcome", "source_ip", "user_agent", "categories", "beneficiary_token"]
    table = ledger.account_events([w.account for w in windows], start, end, cols)
    by_account = {w.account: w for w in windows}
    seen_nets: dict[str, set[str]] = defaultdict(set)
    seen_agents: dict[str, set[str | None]] = defaultdict(set)
    failures: Counter[tuple[str, float, str]] = Counter()
    rate: dict[tuple[float, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in table.to_pylist():
        acct, ts, ip, ua = r["user_name"], r["ts"].timestamp(), r["source_ip"], r["user_agent"]
        w = by_account[acct]
        net = network_of(ip, settings.ipv4_prefix, settings.ipv6_prefix)
        actor = w.actor_pairs is None or (ip, ua) in w.actor_pairs
        who = "actor" if actor and w.start <= ts <= w.end else "usual"
        if net not in seen_nets[acct]:
            if seen_nets[acct]:
                out.entries.append(
                    TimelineEntry(ts, "network", f"{acct}: new network {net} ({ip}) [{who}]", acct)
                )
            seen_nets[acct].add(net)
        if ua not in seen_agents[acct]:
            if seen_agents[acct]:
                out.entries.append(
                    TimelineEntry(ts, "client", f"{acct}: new client {ua!r} [{who}]", acct)
                )
            seen_agents[acct].add(ua)
        if r["action"] == "auth.login":
            if r["outcome"] == "success":
                out.entries.append(
                    TimelineEntry(ts, "login", f"{acct}: login from {ip} ({ua}) [{who}]", acct)
                )
            else:
                failures[(acct, ts - ts % HOUR, ip)] += 1
        if r["categories"] and r["beneficiary_token"] is not None:
            cell = rate[(ts - ts % HOUR, acct)]
            cell[0 if who == "actor" else 1] += 1
    for (acct, hour, ip), n in failures.items():
        out.entries.append(
            TimelineEntry(hour, "login_failure", f"{acct}: {n} failed login(s) from {ip}", acct)
        )
    out.read_rate = sorted((h, a, c[0], c[1]) for (h, a), c in rate.items())
    return out


def decisions(sessions: sessionmaker[Session], values: Sequence[str]) -> list[TimelineEntry]:
    """Decisions of the response layer on these accounts/IPs, if its table exists."""
    if not values:
        return []
    try:
        with sessions() as s:
            bind = s.get_bind()
            if not inspect(bind).has_table("respond_decisions"):
                return []
            rows = s.execute(
                text("SELECT id, scope, value, type, state, created, reason FROM respond_decisions")
            ).all()
    except SQLAlchemyError:
        return []
    wanted = set(values)
    return [
        TimelineEntry(
            float(r.created),
            "decision",
            f"decision {r.id}: {r.type} {r.scope} {r.value} ({r.state}) - {r.reason}",
            r.value if r.scope == "account" else None,
        )
        for r in rows
        if r.value in wanted
    ]


def build_timeline(
    incident: Incident,
    windows: Sequence[AccountWindow],
    ledger: ExposureLedger | None,
    sessions: sessionmaker[Session],
    trail: Sequence[AuditEntry],
    settings: CasesSettings,
) -> Timeline:
    tl = _archive_entries(ledger, windows, settings) if ledger is not None else Timeline()
    for w in windows:
        tl.entries.append(
            TimelineEntry(w.start, "window", f"{w.account}: window starts", w.account)
        )
        tl.entries.append(TimelineEntry(w.end, "window", f"{w.account}: window ends", w.account))
    for a in incident.alerts:
        tl.entries.append(
            TimelineEntry(
                a.detected_at,
                "alert",
                f"alert {a.rule_id} ({a.severity.value}) on {a.entity}: {a.title}",
                a.entity if a.entity in incident.accounts else None,
            )
        )
    tl.entries.extend(decisions(sessions, [*incident.accounts, *incident.ips]))
    for e in trail:
        what = e.details.get("to") or e.details.get("text") or ""
        tl.entries.append(TimelineEntry(e.at, "case", f"{e.action} by {e.actor} {what}".strip()))
    tl.entries.sort(key=lambda e: (e.ts, e.kind, e.text))
    return tl
