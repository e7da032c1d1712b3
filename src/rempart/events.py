"""The one ``Event`` that flows through Rempart, and its vocabulary.

Field names follow the Elastic Common Schema (ECS) where one exists; see ``ECS_FIELDS`` for the
mapping from attribute to ECS name. The in-memory form is a ``msgspec.Struct`` (C-level slots,
not tracked by the garbage collector: an event holds only strings, numbers and a tuple of
strings): millions of them pass through detection, and one is built in about a quarter of a
slotted dataclass's time. No validation runs on construction (parsers validate).

Time is kept as ``ts``, float seconds since the Unix epoch in UTC: unambiguous, cheap to compare
and to window over. ``timestamp`` gives the timezone-aware ``datetime`` (ECS ``@timestamp``).

Raw beneficiary identifiers never appear here: ``beneficiary_token`` is the keyed token made at
ingestion by :mod:`rempart.protect.tokens`, and ``path`` has the identifier replaced by
``{beneficiary}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec


class Action(StrEnum):
    """What a request did, in the portal's terms. Detection and the ledger rely on these."""

    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    MFA = "auth.mfa"
    BENEFICIARY_READ = "beneficiary.read"
    BENEFICIARY_SEARCH = "beneficiary.search"
    BENEFICIARY_EXPORT = "beneficiary.export"
    CLAIM_CREATE = "claim.create"
    CLAIM_LIST = "claim.list"
    PAYMENT_LIST = "payment.list"
    PAGE = "page"
    STATIC = "static"
    OTHER = "other"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class DataCategory(StrEnum):
    """Data categories a successful response discloses (used in Art. 33 drafts, in French)."""

    IDENTITE = "identite"
    DATE_NAISSANCE = "date_naissance"
    NIR = "nir"
    ORGANISME = "organisme_complementaire"
    GARANTIES = "garanties"
    SEXE = "sexe"
    ADRESSE = "adresse"
    SOINS = "soins"


#: Attribute name -> ECS (or rempart.* / beneficiary.*) field name.
ECS_FIELDS: dict[str, str] = {
    "ts": "@timestamp",
    "user_name": "user.name",
    "organization_id": "organization.id",
    "source_ip": "source.ip",
    "user_agent": "user_agent.original",
    "method": "http.request.method",
    "path": "url.path",
    "query": "url.query",
    "status": "http.response.status_code",
    "bytes": "http.response.body.bytes",
    "action": "event.action",
    "outcome": "event.outcome",
    "session_id": "session.id",
    "beneficiary_token": "beneficiary.token",
    "categories": "rempart.disclosed",
    "account_kind": "rempart.account.kind",
    "source": "rempart.origin.source",
    "line": "rempart.origin.line",
}

#: ECS name -> attribute name (rules may use either spelling; see rempart.detect.expr).
FIELD_BY_ECS: dict[str, str] = {v: k for k, v in ECS_FIELDS.items()}


class Event(msgspec.Struct, gc=False):
    """One normalised portal access event."""

    ts: float
    source_ip: str
    action: str
    outcome: str
    user_name: str | None = None
    organization_id: str | None = None
    user_agent: str | None = None
    method: str = "GET"
    path: str = "/"
    query: str | None = None
    status: int = 0
    bytes: int = 0
    session_id: str | None = None
    beneficiary_token: str | None = None
    #: Data categories disclosed by this event (empty unless a successful disclosure).
    categories: tuple[str, ...] = ()
    #: Peer group of the account (pharmacie, medecin, labo...), from the profile or directory.
    account_kind: str | None = None
    #: Origin for evidence: source name (file path, "stdin", "http") and line number (1-based).
    source: str = ""
    line: int = 0

    @property
    def timestamp(self) -> datetime:
        """ECS ``@timestamp``: timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.ts, tz=UTC)

    @property
    def discloses(self) -> bool:
        """True when this event disclosed a beneficiary's record to the account."""
        return bool(self.categories) and self.beneficiary_token is not None

    def to_ecs(self) -> dict[str, Any]:
        """Flat dict with ECS dotted names, ``@timestamp`` as ISO 8601 with offset."""
        out: dict[str, Any] = {}
        for attr, name in ECS_FIELDS.items():
            value = getattr(self, attr)
            if attr == "ts":
                value = self.timestamp.isoformat().replace("+00:00", "Z")
            elif attr == "categories":
                value = list(value)
            if value is None:
                continue
            out[name] = value
        return out


#: ``Event``'s attribute names in constructor (positional) order.
EVENT_FIELDS: tuple[str, ...] = Event.__struct_fields__
