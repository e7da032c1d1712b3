"""Compiled route lookups of a profile: ``Route`` and ``RouteMatcher`` (kept apart from the
Pydantic models of ``rempart.ingest.profile`` so that mypyc compiles them: the matcher runs once
per distinct request line of a log)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from rempart.events import Action, Outcome

_SUCCESS: Final = Outcome.SUCCESS.value
_FAILURE: Final = Outcome.FAILURE.value
_UNKNOWN: Final = Outcome.UNKNOWN.value


@dataclass(frozen=True)
class Route:
    name: str
    action: str
    pattern: re.Pattern[str] | None
    beneficiary_param: str | None
    success: frozenset[int]
    failure: frozenset[int]
    discloses: tuple[str, ...]
    extracts_beneficiary: bool

    def outcome(self, status: int) -> str:
        if status in self.success:
            return _SUCCESS
        if status in self.failure:
            return _FAILURE
        if self.success or self.failure:
            # Explicit lists given and status in neither: an error page is a failure.
            return _FAILURE if status >= 400 else _UNKNOWN
        if 200 <= status < 400:
            return _SUCCESS
        if status >= 400:
            return _FAILURE
        return _UNKNOWN


OTHER: Final = Route("other", Action.OTHER.value, None, None, frozenset(), frozenset(), (), False)


class RouteMatcher:
    """Exact routes by (method, path), then pattern routes tried in order."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        #: (method, route, pattern, number of its ``beneficiary`` group or 0 for none).
        self._patterns: list[tuple[str, Route, re.Pattern[str], int]] = []

    def add(self, method: str, path: str, route: Route) -> None:
        """Add a route (the first one given for an exact method and path wins)."""
        pattern = route.pattern
        if pattern is None:
            self._exact.setdefault(method, {}).setdefault(path, route)
        else:
            by_path = route.extracts_beneficiary and route.beneficiary_param is None
            group = pattern.groupindex["beneficiary"] if by_path else 0
            self._patterns.append((method, route, pattern, group))

    def match(self, method: str, path: str) -> tuple[Route, str | None]:
        """The route for a request and the beneficiary id in its path, if any."""
        route, bid, _start = self.locate(method, path)
        return route, bid

    def locate(self, method: str, path: str) -> tuple[Route, str | None, int]:
        """:meth:`match`, and where the id starts in ``path`` (-1 without one): the id may
        also appear earlier in the path ("1" in "/v1/"), so it is replaced there."""
        exact = self._exact.get(method)
        if exact is not None:
            route = exact.get(path)
            if route is not None:
                return route, None, -1
        for m, r, pattern, group in self._patterns:
            if m != method:
                continue
            hit = pattern.match(path)
            if hit is not None:
                if group:
                    start, end = hit.span(group)
                    if start >= 0:  # (-1: the group took no part in the match)
                        return r, path[start:end], start
                return r, None, -1
        return OTHER, None, -1
