"""The one ``Event`` that flows through Rempart, and its vocabulary.

Field names follow the Elastic Common Schema (ECS) where one exists; see ``ECS_FIELDS`` for the
mapping from attribute to ECS name. The in-memory form is a plain slotted class that mypyc
compiles to a native class (see :mod:`rempart.native`): the compiled detection modules then read
its attributes as C struct fields, not through Python's attribute lookup, which was a fifth of the
engine's instructions with the former ``msgspec.Struct``. Millions of events pass through
detection: :func:`build_events` makes them from decoded columns in compiled code. Construction
checks nothing but the argument types, and only when compiled (parsers validate).

Time is kept as ``ts``, float seconds since the Unix epoch in UTC: unambiguous, cheap to compare
and to window over. ``timestamp`` gives the timezone-aware ``datetime`` (ECS ``@timestamp``).

Raw beneficiary identifiers never appear here: ``beneficiary_token`` is the keyed token made at
ingestion by :mod:`rempart.protect.tokens`, and ``path`` has the identifier replaced by
``{beneficiary}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


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


#: ``Event``'s attribute names in constructor (positional) order.
EVENT_FIELDS: tuple[str, ...] = (
    "ts",
    "source_ip",
    "action",
    "outcome",
    "user_name",
    "organization_id",
    "user_agent",
    "method",
    "path",
    "query",
    "status",
    "bytes",
    "session_id",
    "beneficiary_token",
    "categories",
    "account_kind",
    "source",
    "line",
)


class Event:
    """One normalised portal access event.

    A plain class with its ``__init__``, ``__eq__`` and ``__repr__`` written out (not a
    dataclass): mypyc compiles a written ``__init__`` to a C function that compiled code calls
    directly, where a dataclass's generated one stays interpreted.
    """

    __slots__ = EVENT_FIELDS

    def __init__(
        self,
        ts: float,
        source_ip: str,
        action: str,
        outcome: str,
        user_name: str | None = None,
        organization_id: str | None = None,
        user_agent: str | None = None,
        method: str = "GET",
        path: str = "/",
        query: str | None = None,
        status: int = 0,
        bytes: int = 0,
        session_id: str | None = None,
        beneficiary_token: str | None = None,
        categories: tuple[str, ...] = (),
        account_kind: str | None = None,
        source: str = "",
        line: int = 0,
    ) -> None:
        self.ts = ts
        self.source_ip = source_ip
        self.action = action
        self.outcome = outcome
        self.user_name = user_name
        self.organization_id = organization_id
        self.user_agent = user_agent
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.bytes = bytes
        self.session_id = session_id
        self.beneficiary_token = beneficiary_token
        #: Data categories disclosed by this event (empty unless a successful disclosure).
        self.categories = categories
        #: Peer group of the account (pharmacie, medecin, labo...), from the profile or directory.
        self.account_kind = account_kind
        #: Origin for evidence: source name (file path, "stdin", "http"), line number (1-based).
        self.source = source
        self.line = line

    def values(self) -> tuple[Any, ...]:
        """The attributes' values, in :data:`EVENT_FIELDS` order."""
        return (
            self.ts,
            self.source_ip,
            self.action,
            self.outcome,
            self.user_name,
            self.organization_id,
            self.user_agent,
            self.method,
            self.path,
            self.query,
            self.status,
            self.bytes,
            self.session_id,
            self.beneficiary_token,
            self.categories,
            self.account_kind,
            self.source,
            self.line,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.values() == other.values()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(EVENT_FIELDS, self.values(), strict=True))
        return f"Event({inner})"

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


#: One column of events: its distinct values, and for each event the position of its value.
Column = tuple[list[Any], list[int]]


def build_events(columns: Sequence[Column]) -> list[Event]:
    """Events from one :data:`Column` per attribute, in :data:`EVENT_FIELDS` order.

    Decoders keep low-cardinality values once and index them per row; this builds the events
    from that form in one compiled loop (no per-row Python call, no intermediate lists).
    """
    if len(columns) != len(EVENT_FIELDS):
        raise ValueError(f"{len(columns)} columns for {len(EVENT_FIELDS)} event attributes")
    (v0, i0), (v1, i1), (v2, i2), (v3, i3), (v4, i4), (v5, i5) = columns[:6]
    (v6, i6), (v7, i7), (v8, i8), (v9, i9), (v10, i10), (v11, i11) = columns[6:12]
    (v12, i12), (v13, i13), (v14, i14), (v15, i15), (v16, i16), (v17, i17) = columns[12:]
    out: list[Event] = []
    for r in range(len(i0)):
        out.append(
            Event(
                v0[i0[r]],
                v1[i1[r]],
                v2[i2[r]],
                v3[i3[r]],
                v4[i4[r]],
                v5[i5[r]],
                v6[i6[r]],
                v7[i7[r]],
                v8[i8[r]],
                v9[i9[r]],
                v10[i10[r]],
                v11[i11[r]],
                v12[i12[r]],
                v13[i13[r]],
                v14[i14[r]],
                v15[i15[r]],
                v16[i16[r]],
                v17[i17[r]],
            )
        )
    return out
