"""The compromise window of each account of an incident, estimated with its reasoning.

For one account, the alerts give an anchor: the first and last event time they rest on. The
archive then tells which networks and clients (user agents) the account *usually* uses: those
seen in a baseline period that ends ``novelty_horizon_days`` before the anchor (halved down to a
day until at least a day of the account's history comes before it). An (ip, client)
pair used from the horizon on is the actor's when its client is not usual, or when its network
is not usual and what it read looks like harvesting (at least ``stranger_min_reads``
disclosures, ``stranger_share`` of them of people no other pair of the account read): a usual
client on a new network is otherwise the practitioner on the move (a phone changes address every
session). Usual networks are compared as /16 (IPv4) and /32 (IPv6) by default, so that a box
re-addressed by its ISP stays usual. The window
starts at the actor's first event (normally the first login from the new network or client,
before the harvest) and ends at the actor's last event, cut at containment when the incident is
contained. An analyst can replace the estimate (audited). The reasoning is written in French:
it goes into the Art. 33 draft as it is.

When the account has no usual pair at all (no history, or everything is new), or no archive is
available, every pair counts and the reasoning says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rempart.alerts import Alert
from rempart.cases.ledger import ActorFilter, ExposureLedger
from rempart.cases.settings import CasesSettings

DAY = 86400.0


def network_of(ip: str | None, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The network an address belongs to (``203.0.113.0/24``); the text itself if not an IP."""
    if not ip:
        return "-"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = v4_prefix if addr.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} jours"


@dataclass(slots=True)
class AccountWindow:
    """Compromise window of one account, and why."""

    account: str
    start: float
    end: float
    #: (ip, user agent) pairs attributed to the actor; ``None`` = every pair of the account.
    actor_pairs: frozenset[tuple[str, str | None]] | None
    reasoning: list[str] = field(default_factory=list)
    #: "estimated" or "analyst" (set by hand, audited).
    origin: str = "estimated"
    #: An insider's window (every alert on the account tagged ``insider``, and no new client
    #: or network that logged in or read): only the people the account had not read in the
    #: ``served_before_days`` before it count as affected.
    strangers_only: bool = False

    def actor_filter(self, attribution: str) -> ActorFilter:
        pairs = self.actor_pairs if attribution == "actor" else None
        return ActorFilter(self.account, self.start, self.end, pairs)

    def to_dict(self) -> dict[str, object]:
        return {
            "account": self.account,
            "start": iso(self.start),
            "end": iso(self.end),
            "origin": self.origin,
            "actor_pairs": None
            if self.actor_pairs is None
            else sorted([ip, ua] for ip, ua in self.actor_pairs),
            "reasoning": list(self.reasoning),
            "strangers_only": self.strangers_only,
        }


#: The tag of rules whose alerts accuse the account's own reads (an insider), not an intruder.
INSIDER_TAG = "insider"


def _about(alerts: Sequence[Alert], account: str) -> list[Alert]:
    """The alerts that name ``account``."""
    return [a for a in alerts if account in a.accounts or a.entity == account]


def _anchor(mine: Sequence[Alert]) -> tuple[float, float, set[str]]:
    first = min(a.first_seen for a in mine)
    last = max(a.last_seen for a in mine)
    ips = {ip for a in mine for ip in a.ips}
    return first, last, ips


def estimate_window(
    ledger: ExposureLedger | None,
    alerts: Sequence[Alert],
    account: str,
    settings: CasesSettings,
    *,
    contained_at: float | None = None,
    archive_end: float | None = None,
) -> AccountWindow:
    """Estimate the compromise window of ``account`` from ``alerts`` and the archive."""
    mine = _about(alerts, account)
    first, last, alert_ips = _anchor(mine)
    reasons = [
        f"les alertes sur {account} reposent sur des événements du {iso(first)} au {iso(last)}",
    ]

    def net(ip: str | None) -> str:
        return network_of(ip, settings.ipv4_prefix, settings.ipv6_prefix)

    horizon = first - settings.novelty_horizon_days * DAY
    base_start = horizon - settings.baseline_days * DAY
    span_end = contained_at if contained_at is not None else float("inf")
    table = None
    end_query = last
    if ledger is not None:
        if contained_at is not None:
            end_query = contained_at
        else:
            archive_end = (
                archive_end if archive_end is not None else (ledger.span() or (0, last))[1]
            )
            end_query = archive_end
        end_query = max(end_query, last)
        table = ledger.fingerprints([account], base_start, end_query)
    if table is None or table.num_rows == 0:
        reasons.append("aucun événement archivé pour ce compte : fenêtre tirée des seules alertes")
        return AccountWindow(account, first, min(last, span_end), None, reasons)

    def usual_net(ip: str | None) -> str:
        return network_of(ip, settings.usual_ipv4_prefix, settings.usual_ipv6_prefix)

    rows = table.to_pylist()
    # A short history (a new account, an archive started recently): shrink the horizon, halving
    # it down to a day, until at least a day of the account's activity comes before it.
    step = settings.novelty_horizon_days * DAY
    known_since = min(r["first"] for r in rows)
    while step > DAY and first - step - known_since < DAY:
        step = max(DAY, step / 2)
    if step < settings.novelty_horizon_days * DAY:
        horizon = first - step
        reasons.append(
            f"historique court : horizon de nouveauté réduit à {_duration(step)} avant les alertes"
        )
    usual_nets = {usual_net(r["source_ip"]) for r in rows if r["first"] < horizon}
    usual_agents = {r["user_agent"] for r in rows if r["first"] < horizon}
    candidates = [r for r in rows if r["last"] >= horizon]
    strangers = ledger.pair_strangers(account, base_start, end_query) if ledger else {}
    actor = []
    moving = 0
    for r in candidates:
        new_net = usual_net(r["source_ip"]) not in usual_nets
        new_client = r["user_agent"] not in usual_agents
        if new_client:
            actor.append(r)
        elif new_net:
            n, odd = strangers.get((r["source_ip"], r["user_agent"]), (0, 0))
            if n >= settings.stranger_min_reads and odd >= settings.stranger_share * n:
                actor.append(r)
            else:
                moving += 1
    if all(INSIDER_TAG in a.tags for a in mine) and not any(
        r["first_login"] is not None or strangers.get((r["source_ip"], r["user_agent"]), (0, 0))[0]
        for r in actor
    ):
        # The reader is the account itself, on its own workstations: the new clients met, if
        # any, only tried the account (never logged in, read nothing); taking them for the actor
        # would leave every record the insider read out.
        end = min(last, contained_at) if contained_at is not None else last
        if actor:
            reasons.append(
                f"{len(actor)} client(s) ou réseau(x) nouveau(x) sans connexion réussie ni "
                "lecture : des tentatives sur le compte, non retenues"
            )
        reasons += [
            "alerte de consultation sans lien de soins (initié) : le lecteur est le compte "
            "lui-même, sur ses postes habituels ; toute son activité est retenue",
            f"la fenêtre est celle des alertes : du {iso(first)} au {iso(end)}",
            "seules les personnes que le compte n'avait pas consultées dans les "
            f"{settings.served_before_days:g} jours précédents sont comptées (ses inconnus) : "
            "une borne haute",
        ]
        return AccountWindow(account, first, max(first, end), None, reasons, strangers_only=True)
    if not usual_nets and not usual_agents:
        reasons.append(
            f"aucun historique de {account} avant {iso(horizon)} (référence de "
            f"{settings.baseline_days:g} jours) : tous les réseaux et clients sont retenus"
        )
        actor = candidates
        pairs = None
    elif not actor:
        reasons.append(
            "tous les réseaux et clients utilisés autour des alertes étaient habituels pour le "
            "compte (initié ou poste habituel compromis) : toute l'activité est retenue"
        )
        actor = candidates
        pairs = None
    else:
        pairs = frozenset((r["source_ip"], r["user_agent"]) for r in actor)
        nets = sorted({net(r["source_ip"]) for r in actor})
        agents = sorted({r["user_agent"] or "-" for r in actor})
        reasons.append(
            f"habituels pour {account} avant {iso(horizon)} : {len(usual_nets)} réseau(x) "
            f"(/{settings.usual_ipv4_prefix}), {len(usual_agents)} client(s)"
        )
        if moving:
            reasons.append(
                f"{moving} nouvelle(s) adresse(s) avec un client habituel, sans lecture de type "
                "aspiration : le praticien en déplacement, non retenu(s)"
            )
        named = sorted(
            {ip for ip in alert_ips if (ip, None) not in pairs} & {ip for ip, _ in pairs}
        )
        if named:
            reasons.append(f"adresses nommées par les alertes et retenues : {', '.join(named)}")
        reasons.append(
            f"attaquant : réseau(x) {', '.join(nets)} ; client(s) "
            f"{', '.join(repr(a) for a in agents)}"
        )

    def rel(t: float) -> str:
        side = "avant" if t <= first else "après"
        return f"{_duration(first - t)} {side} le premier événement alerté"

    if pairs is None:
        start, end = first, last
        reasons.append(f"la fenêtre est celle des alertes : du {iso(start)} au {iso(end)}")
    else:
        start = min(r["first"] for r in actor)
        end = max(r["last"] for r in actor)
        logins = [r["first_login"] for r in actor if r["first_login"] is not None]
        if logins and min(logins) <= start + 1e-6:
            reasons.append(
                "la fenêtre s'ouvre à la première connexion réussie depuis le réseau ou le client "
                f"de l'attaquant, {iso(start)}, {rel(start)}"
            )
        else:
            reasons.append(
                "la fenêtre s'ouvre au premier événement de l'attaquant, "
                f"{iso(start)}, {rel(start)}"
            )
        reasons.append(f"elle se ferme au dernier événement de l'attaquant, {iso(end)}")
    if contained_at is not None and end > contained_at:
        end = max(start, contained_at)
        reasons.append(f"elle est coupée au confinement, {iso(contained_at)}")
    return AccountWindow(account, start, end, pairs, reasons)


def estimate_windows(
    ledger: ExposureLedger | None,
    alerts: Sequence[Alert],
    accounts: Iterable[str],
    settings: CasesSettings,
    *,
    contained_at: float | None = None,
) -> list[AccountWindow]:
    archive_end = None
    if ledger is not None and contained_at is None:
        span = ledger.span()
        archive_end = span[1] if span else None
    return [
        estimate_window(
            ledger, alerts, a, settings, contained_at=contained_at, archive_end=archive_end
        )
        for a in sorted(set(accounts))
        if any(a in al.accounts or al.entity == a for al in alerts)
    ]


def parse_time(text: str) -> float:
    """ISO 8601 (``Z`` or offset; naive means UTC) to epoch seconds."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def shift(ts: float, **kwargs: float) -> float:
    return ts + timedelta(**kwargs).total_seconds()
