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

from librt.strings import read_f64_le, read_i32_le, read_i64_le
from mypy_extensions import i64


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


#: One dictionary-encoded column of events: its distinct values, and each event's position
#: among them as 32-bit little-endian integers (the bytes of an Arrow int32 buffer).
Column = tuple[list[Any], bytes]

#: The attributes :func:`build_events` takes as 64-bit integers, and its float (``ts``).
INT_FIELDS: tuple[str, ...] = ("status", "bytes", "line")
#: The others, dictionary-encoded, in :data:`EVENT_FIELDS` order.
DICT_FIELDS: tuple[str, ...] = tuple(f for f in EVENT_FIELDS if f != "ts" and f not in INT_FIELDS)


def build_events(ts: bytes, strings: Sequence[Column], ints: Sequence[bytes]) -> list[Event]:
    """Events from their columns, all little-endian bytes: ``ts`` (64-bit floats), one
    :data:`Column` per attribute of :data:`DICT_FIELDS` and one column of 64-bit integers per
    attribute of :data:`INT_FIELDS`.

    Decoders keep low-cardinality values once and index them per row; this builds the events
    from that form in one compiled loop that reads each row's numbers in place (no per-row
    Python call, no int or float object per row and column).
    """
    if len(strings) != len(DICT_FIELDS) or len(ints) != len(INT_FIELDS):
        raise ValueError(
            f"{len(strings)} dictionary and {len(ints)} integer columns for "
            f"{len(DICT_FIELDS)} and {len(INT_FIELDS)} event attributes"
        )
    # Numbered by position in EVENT_FIELDS (0 is ts; 10, 11 and 17 are the integers).
    (v1, b1), (v2, b2), (v3, b3), (v4, b4), (v5, b5), (v6, b6), (v7, b7) = strings[:7]
    (v8, b8), (v9, b9), (v12, b12), (v13, b13), (v14, b14), (v15, b15), (v16, b16) = strings[7:]
    status, size, line = ints
    out: list[Event] = []
    n: i64 = len(ts) >> 3
    r: i64
    for r in range(n):
        at: i64 = r << 2
        at8: i64 = r << 3
        out.append(
            Event(
                read_f64_le(ts, at8),
                v1[read_i32_le(b1, at)],
                v2[read_i32_le(b2, at)],
                v3[read_i32_le(b3, at)],
                v4[read_i32_le(b4, at)],
                v5[read_i32_le(b5, at)],
                v6[read_i32_le(b6, at)],
                v7[read_i32_le(b7, at)],
                v8[read_i32_le(b8, at)],
                v9[read_i32_le(b9, at)],
                read_i64_le(status, at8),
                read_i64_le(size, at8),
                v12[read_i32_le(b12, at)],
                v13[read_i32_le(b13, at)],
                v14[read_i32_le(b14, at)],
                v15[read_i32_le(b15, at)],
                v16[read_i32_le(b16, at)],
                read_i64_le(line, at8),
            )
        )
    return out
