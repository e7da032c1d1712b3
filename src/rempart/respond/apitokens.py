"""API tokens for the server: shown once, stored as SHA-256, with scopes.

Why SHA-256 and not argon2: argon2 (or bcrypt) exists to slow down guessing of *low-entropy*
secrets such as passwords. These tokens are 256 random bits from ``secrets``; nobody can
enumerate 2^256 candidates whatever the hash speed, so a slow hash buys no security. It would,
however, cost tens of milliseconds on every enforcement check (nginx asks on every request) and
let anyone with a bad token burn the server's CPU. SHA-256 of the whole token, compared in
constant time, keeps the check in microseconds; a leaked database gives no usable token.

Token text: ``rmp_<id>_<secret>``; the id (not secret) makes tokens recognisable in logs and
revocable by id without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.errors import InputError, NotFoundError, StoreError
from rempart.respond.tables import ApiTokenRow

_RECHECK_SECONDS = 30.0


class TokenScope(StrEnum):
    #: Send events (``POST /v1/events``).
    INGEST = "ingest"
    #: Ask for decisions (``/v1/decisions/check``): nginx, middleware.
    ENFORCE = "enforce"
    #: Manage decisions, read alerts, everything.
    ADMIN = "admin"


@dataclass(slots=True, frozen=True)
class ApiToken:
    id: str
    name: str
    scopes: frozenset[TokenScope]
    created: float
    revoked_at: float | None = None

    def allows(self, scope: TokenScope) -> bool:
        return self.revoked_at is None and (scope in self.scopes or TokenScope.ADMIN in self.scopes)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values: list[str]) -> frozenset[TokenScope]:
    out: set[TokenScope] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.add(TokenScope(part))
            except ValueError:
                names = ", ".join(s.value for s in TokenScope)
                raise InputError(f"unknown token scope {part!r}", hint=f"one of {names}") from None
    if not out:
        raise InputError("a token needs at least one scope (ingest, enforce, admin)")
    return frozenset(out)


def _row_token(row: ApiTokenRow) -> ApiToken:
    scopes = frozenset(TokenScope(s) for s in row.scopes.split(",") if s)
    return ApiToken(row.id, row.name, scopes, row.created, row.revoked_at)


class ApiTokens:
    """Create, verify and revoke tokens; verification is cached in memory for a few seconds."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self._cache: dict[str, tuple[ApiToken | None, float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: frozenset[TokenScope]) -> tuple[str, ApiToken]:
        """Returns the token text (to show once) and its record."""
        token_id = secrets.token_hex(4)
        text = f"rmp_{token_id}_{secrets.token_urlsafe(32)}"
        row = ApiTokenRow(
            id=token_id,
            name=name,
            token_hash=hash_token(text),
            scopes=",".join(sorted(s.value for s in scopes)),
            created=time.time(),
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise StoreError("token id collision, try again") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store token: {exc.__class__.__name__}") from None
        return text, _row_token(row)

    def list(self) -> list[ApiToken]:
        with self._sessions() as session:
            rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created)).all()
        return [_row_token(r) for r in rows]

    def revoke(self, token_id: str) -> ApiToken:
        with self._sessions.begin() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"no API token {token_id!r}")
            row.revoked_at = row.revoked_at or time.time()
            token = _row_token(row)
        with self._lock:
            self._cache.clear()
        return token

    def verify(self, text: str | None) -> ApiToken | None:
        """The token's record when ``text`` is a valid, unrevoked token, else ``None``."""
        if not text or not text.startswith("rmp_") or len(text) > 200:
            return None
        digest = hash_token(text)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < _RECHECK_SECONDS:
            return cached[0]
        with self._sessions() as session:
            row = session.scalars(
                select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)
            ).first()
        token = None
        if row is not None and hmac.compare_digest(row.token_hash, digest):
            token = _row_token(row)
            if token.revoked_at is not None:
                token = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (token, now)
        return token
