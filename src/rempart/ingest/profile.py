"""Route profiles: map method + path (+ status) to an action, extract the beneficiary id, and say
which data categories a successful response discloses.

A profile is YAML validated by Pydantic (fails closed), compiled once into fast lookups: exact
paths are a dict lookup, patterns are tried in order only when no exact route matches.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from rempart.errors import ProfileError
from rempart.events import Action, DataCategory
from rempart.ingest.routes import Route, RouteMatcher
from rempart.settings import StrictModel

BENEFICIARY_PLACEHOLDER = "{beneficiary}"


class RouteSpec(StrictModel):
    name: str
    method: str = "GET"
    #: Exact path, or a regular expression when it starts with ``^``. A named group
    #: ``beneficiary`` extracts the beneficiary id.
    path: str
    action: Action
    #: Query parameter holding the beneficiary id (for routes that take it in the query).
    beneficiary_param: str | None = None
    success: list[int] = Field(default_factory=list)
    failure: list[int] = Field(default_factory=list)
    discloses: list[DataCategory] = Field(default_factory=list)

    @field_validator("method")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class AccountSpec(StrictModel):
    kind_pattern: str | None = None
    kinds: dict[str, str] = Field(default_factory=dict)


class ProfileSpec(StrictModel):
    name: str
    description: str = ""
    log_format: str = "combined"
    trailing_fields: list[str] = Field(default_factory=list)
    accounts: AccountSpec = AccountSpec()
    routes: list[RouteSpec]


_TRAILING_ALLOWED = {"request_time", "session_id", "organization_id", "forwarded_for", "ignore"}


class RouteProfile:
    """A compiled profile. ``match(method, path)`` -> (route, beneficiary id or None)."""

    def __init__(self, spec: ProfileSpec, *, where: str):
        self.spec = spec
        self.name = spec.name
        self.where = where
        self.trailing_fields = tuple(spec.trailing_fields)
        for f in self.trailing_fields:
            if f not in _TRAILING_ALLOWED:
                raise ProfileError(
                    f"unknown trailing field {f!r}; expected one of {sorted(_TRAILING_ALLOWED)}",
                    where=where,
                )
        self.matcher = RouteMatcher()
        #: ``match(method, path)`` -> (route, beneficiary id in the path or None).
        self.match = self.matcher.match
        for r in spec.routes:
            compiled: re.Pattern[str] | None = None
            if r.path.startswith("^"):
                try:
                    compiled = re.compile(r.path)
                except re.error as exc:
                    raise ProfileError(
                        f"route {r.name!r}: bad pattern: {exc}", where=where
                    ) from None
            extracts = bool(compiled is not None and "beneficiary" in compiled.groupindex)
            if r.discloses and not (
                extracts or r.beneficiary_param or r.action != Action.BENEFICIARY_READ
            ):
                raise ProfileError(
                    f"route {r.name!r} discloses records but has no beneficiary id", where=where
                )
            route = Route(
                name=r.name,
                action=str(r.action),
                pattern=compiled,
                beneficiary_param=r.beneficiary_param,
                success=frozenset(r.success),
                failure=frozenset(r.failure),
                discloses=tuple(str(c) for c in r.discloses),
                extracts_beneficiary=extracts or r.beneficiary_param is not None,
            )
            self.matcher.add(r.method, r.path, route)
        self._kind_re = (
            re.compile(spec.accounts.kind_pattern) if spec.accounts.kind_pattern else None
        )
        self._kinds = dict(spec.accounts.kinds)
        self._kind_cache: dict[str, str | None] = {}

    def account_kind(self, account: str) -> str | None:
        """Peer group of an account from its name (``PH0042`` -> ``pharmacie``)."""
        try:
            return self._kind_cache[account]
        except KeyError:
            pass
        kind: str | None = None
        if self._kind_re is not None:
            m = self._kind_re.match(account)
            if m is not None:
                raw = m.group("kind") if "kind" in self._kind_re.groupindex else m.group(0)
                kind = self._kinds.get(raw, raw.lower())
        if len(self._kind_cache) < 1_000_000:
            self._kind_cache[account] = kind
        return kind


def builtin_profiles() -> list[str]:
    base = resources.files("rempart.ingest").joinpath("profiles")
    return sorted(p.name.removesuffix(".yaml") for p in base.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> RouteProfile:
    """Load a built-in profile by name, or a profile YAML file by path."""
    text: str
    where: str
    name = str(name_or_path)
    if name in builtin_profiles():
        where = f"profile {name}"
        res = resources.files("rempart.ingest").joinpath("profiles", f"{name}.yaml")
        text = res.read_text(encoding="utf-8")
    else:
        path = Path(name).expanduser()
        where = str(path)
        if not path.is_file():
            raise ProfileError(
                "no such profile (not a built-in name, not a file)",
                where=name,
                hint=f"built-in profiles: {', '.join(builtin_profiles())}",
            )
        text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"not valid YAML: {exc}", where=where) from None
    try:
        spec = ProfileSpec.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        key = ".".join(str(p) for p in e["loc"])
        raise ProfileError(f"{key}: {e['msg']}", where=where) from None
    return RouteProfile(spec, where=where)
