"""Turn a parsed request into an ``Event``: route, action, outcome, beneficiary token, peer group.

This is where raw beneficiary identifiers stop: the id in the path becomes a keyed token and the
stored path carries ``{beneficiary}`` instead. Identifier-shaped digit runs anywhere else in the
path or query (a malformed id on an unknown route, a search by NIR) are replaced by their token
too, so no raw NIR reaches the archive, the ledger or the quarantine.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl

from rempart.errors import InputError
from rempart.events import Event
from rempart.ingest.parsers import RawRequest
from rempart.ingest.profile import BENEFICIARY_PLACEHOLDER, RouteProfile
from rempart.ingest.routes import Route
from rempart.protect.tokens import Tokenizer

#: A NIR-shaped run: 13 characters (digits, or 2A/2B for Corsica) and an optional 2-digit key,
#: possibly written with spaces, dots or dashes between groups.
NIR_LIKE = re.compile(
    r"(?<![0-9A-Za-z])[12378][ .\-]?[0-9]{2}[ .\-]?[0-9]{2}[ .\-]?(?:[0-9]{2}|2[AaBb])"
    r"[ .\-]?[0-9]{3}[ .\-]?[0-9]{3}(?:[ .\-]?[0-9]{2})?(?![0-9A-Za-z])"
)
_NIR_LIKE_BYTES = re.compile(NIR_LIKE.pattern.encode())
_SEPARATORS = str.maketrans("", "", " .-")


def normalise_identifier(raw: str) -> str:
    """Canonical form of a beneficiary id before tokenisation: no separators, upper case."""
    if raw.isascii() and raw.isalnum():
        return raw.upper()  # nothing to remove (the common case; translate is slow)
    return raw.translate(_SEPARATORS).upper()


def redact_bytes(data: bytes, tokenizer: Tokenizer) -> bytes:
    """``data`` with its NIR-shaped runs replaced by their tokens (for quarantined input)."""
    return _NIR_LIKE_BYTES.sub(
        lambda m: tokenizer(normalise_identifier(m.group(0).decode("ascii", "replace"))).encode(),
        data,
    )


def _templated(path: str, bid: str, start: int) -> str:
    """``path`` with the id found at ``start`` replaced by the placeholder."""
    return path[:start] + BENEFICIARY_PLACEHOLDER + path[start + len(bid) :]


class RequestInfo:
    """What a request line means (shared by every line with the same request: do not mutate).

    A plain class: mypyc compiles its ``__init__``, where a dataclass's generated one runs
    interpreted (about 2,000 instructions per distinct request line)."""

    __slots__ = ("method", "path", "query", "route", "token")

    def __init__(self, route: Route, method: str, path: str, query: str | None, token: str | None):
        self.route = route
        self.method = method
        self.path = path
        self.query = query
        self.token = token

    def __repr__(self) -> str:
        return (
            f"RequestInfo(route={self.route.name!r}, method={self.method!r}, "
            f"path={self.path!r}, query={self.query!r}, token={self.token!r})"
        )


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    kind: str | None
    organization_id: str | None


def load_directory(path: Path) -> dict[str, DirectoryEntry]:
    """Account directory CSV: columns ``account,kind,organization_id``."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "account" not in reader.fieldnames:
                raise InputError("directory CSV needs an 'account' column", where=str(path))
            return {
                row["account"]: DirectoryEntry(
                    row.get("kind") or None, row.get("organization_id") or None
                )
                for row in reader
                if row.get("account")
            }
    except FileNotFoundError:
        raise InputError("directory file not found", where=str(path)) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read directory: {exc}", where=str(path)) from None


#: Request lines ``request_infos`` keeps before it starts again from empty (checked at the
#: start of a call, so one call's lines may go over it). Rights checks are not kept: a rights
#: check names its beneficiary, so there is one line per beneficiary (835,000 in the 10M-line
#: benchmark log), met again only 18% of the time within 200,000 lines; keeping them cost more
#: in lookups and insertions into a dict out of cache than the hits saved (``bench/same_time.py``:
#: -1.6% and -1.8% CPU on that log without them). What is kept (other routes, queries) is small.
BY_LINE_MAX: Final = 200_000


class Normalizer:
    """Profile + tokenizer (+ directory) applied to parsed requests."""

    def __init__(
        self,
        profile: RouteProfile,
        tokenizer: Tokenizer,
        directory: dict[str, DirectoryEntry] | None = None,
        sealer: Callable[[str, str], None] | None = None,
    ):
        """``sealer(token, identifier)`` is called for each beneficiary id met, so that the
        re-identification vault (``rempart.cases.vault``) can seal it for the DPO."""
        self.sealer = sealer
        self.profile = profile
        self.tokenizer = tokenizer
        self.directory = directory or {}
        self._intern: dict[str, str] = {}
        self._requests: dict[tuple[str, str], RequestInfo] = {}
        self._accounts: dict[str, tuple[str, str | None, str | None]] = {}
        #: request line ("GET /path HTTP/1.1") -> its RequestInfo (see request_infos)
        self._by_line: dict[str, RequestInfo] = {}

    def redact(self, text: str) -> str:
        """Replace NIR-shaped runs by their tokens."""
        if not any(c.isdigit() for c in text):
            return text
        return NIR_LIKE.sub(lambda m: self.tokenizer(normalise_identifier(m.group(0))), text)

    def redact_bytes(self, data: bytes) -> bytes:
        return redact_bytes(data, self.tokenizer)

    def _i(self, value: str | None) -> str | None:
        if value is None:
            return None
        got = self._intern.get(value)
        if got is None:
            if len(self._intern) > 500_000:
                self._intern.clear()
            self._intern[value] = value
            got = value
        return got

    def request_info(self, method: str, target: str) -> RequestInfo:
        """Route, stored path and query, and beneficiary token of a request target (cached)."""
        key = (method, target)
        info = self._requests.get(key)
        if info is not None:
            return info
        path, _, query = target.partition("?")
        route, bid, start = self.profile.matcher.locate(method, path)
        return self.matched_request_info(method, target, path, query, route, bid, start)

    def matched_request_info(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        route: Route,
        bid: str | None,
        start: int,
    ) -> RequestInfo:
        """:meth:`request_info` once the route is known (``matcher.locate(method, path)``)."""
        token: str | None = None
        if bid is not None:
            ident = normalise_identifier(bid)
            token = self.tokenizer(ident)
            if self.sealer is not None:
                self.sealer(token, ident)
            path = _templated(path, bid, start)
        elif route.beneficiary_param and query:
            pairs = parse_qsl(query, keep_blank_values=True)
            for k, v in pairs:
                if k == route.beneficiary_param and v:
                    ident = normalise_identifier(v)
                    token = self.tokenizer(ident)
                    if self.sealer is not None:
                        self.sealer(token, ident)
                    break
            query = "&".join(
                f"{k}={BENEFICIARY_PLACEHOLDER if k == route.beneficiary_param else v}"
                for k, v in pairs
            )
        if route.name == "other":
            path = self.redact(path)
        info = RequestInfo(
            route,
            self._i(method) or method,
            self._i(path) or path,
            self.redact(query) if query else None,
            token,
        )
        if len(self._requests) >= 1_000_000:
            self._requests.clear()
        self._requests[(method, target)] = info
        return info

    def request_infos(self, requests: list[str]) -> list[RequestInfo | None]:
        """:meth:`request_info` of many ``"METHOD target [protocol]"`` request lines at once
        (None for a request line that is not 2 or 3 words)."""
        by_line = self._by_line
        if len(by_line) >= BY_LINE_MAX:
            by_line.clear()
        out: list[RequestInfo | None] = list(map(by_line.get, requests))
        cached = self._requests.get
        matcher = self.profile.matcher
        tokenizer = self.tokenizer
        sealer = self.sealer
        intern = self._intern
        for i, request in enumerate(requests):
            if out[i] is not None:
                continue
            words = request.split(" ")
            if len(words) != 3 and len(words) != 2:
                continue
            method, target = words[0], words[1]
            path, _, query = target.partition("?")
            route, bid, start = matcher.locate(method, path)
            if (
                bid is None
                or query
                or route.name == "other"
                or not (bid.isascii() and bid.isalnum())
                or len(intern) > 500_000
            ):
                info = cached((method, target))
                if info is None:
                    info = self.matched_request_info(method, target, path, query, route, bid, start)
            else:
                # The common case inline (an id in the path, no query: a rights check), the
                # same result as matched_request_info without its general steps and caches,
                # and not kept in ``by_line`` either (see BY_LINE_MAX): each beneficiary makes
                # request lines of its own.
                ident = bid.upper()
                token = tokenizer.fresh_token(ident)
                if sealer is not None:
                    sealer(token, ident)
                path = _templated(path, bid, start)
                out[i] = RequestInfo(
                    route,
                    intern.setdefault(method, method),
                    intern.setdefault(path, path),
                    None,
                    token,
                )
                continue
            out[i] = by_line[request] = info
        return out

    def account_info(self, user: str) -> tuple[str, str | None, str | None]:
        """(interned account, peer group, organisation) of an account name (cached)."""
        got = self._accounts.get(user)
        if got is None:
            entry = self.directory.get(user)
            if entry is not None:
                got = (user, entry.kind, entry.organization_id)
            else:
                got = (user, self.profile.account_kind(user), None)
            if len(self._accounts) >= 1_000_000:
                self._accounts.clear()
            self._accounts[user] = got
        return got

    def event(self, raw: RawRequest, source: str, line: int) -> Event:
        info = self.request_info(raw.method, raw.target)
        route = info.route
        outcome = route.outcome(raw.status)
        token = info.token
        categories = route.discloses if (outcome == "success" and token is not None) else ()
        user = raw.user
        kind: str | None = None
        org = raw.organization_id
        if user is not None:
            user, kind, dir_org = self.account_info(user)
            org = org or dir_org
        return Event(
            raw.ts,
            self._i(raw.ip) or raw.ip,
            route.action,
            outcome,
            user,
            org,
            self._i(raw.user_agent),
            info.method,
            info.path,
            info.query,
            raw.status,
            raw.bytes,
            raw.session_id,
            token,
            categories,
            kind,
            source,
            line,
        )
