"""Response policies in YAML: which alerts lead to which decisions and notifications.

```yaml
name: tiers-payant
escalation: {factor: 4, max_duration: 7d, window: 30d}
rules:
  - name: stop-harvest
    when: {rules: ["harvest.*"], severity: high, entity_types: [account]}
    then:
      - {scope: account, type: block, duration: 1h}
    notify: []          # channel names from the operator's config; empty = every channel
```

A policy may add protected entities and tighten caps or turn on simulation; it can never loosen
the operator's configuration nor name an outbound destination.
"""

from __future__ import annotations

import fnmatch
import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from rempart.alerts import Alert, Severity
from rempart.errors import ConfigError, InputError
from rempart.respond.decisions import DecisionType, Rate, Scope
from rempart.respond.settings import ProtectedEntity, SafetyCaps
from rempart.settings import StrictModel

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: str | float | int) -> float:
    """``90``, ``"30s"``, ``"15m"``, ``"4h"``, ``"7d"``, ``"2w"`` -> seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(value)
        if not match:
            raise InputError(f"invalid duration {value!r}", hint="write e.g. 30s, 15m, 4h, 7d")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0:
        raise InputError(f"duration must be positive: {value!r}")
    return seconds


def _duration_field(value: object) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError("a duration is a number of seconds or text like 15m, 4h, 7d")
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


class AlertMatch(StrictModel):
    #: Glob patterns on the alert's rule id (any matches); empty = every rule.
    rules: list[str] = Field(default_factory=list)
    #: Minimum severity.
    severity: Severity = Severity.INFO
    #: Entity types the rule applies to; empty = any.
    entity_types: list[Literal["account", "ip", "organization", "session", "campaign"]] = Field(
        default_factory=list
    )
    #: The alert must carry at least one of these tags; empty = no condition.
    tags: list[str] = Field(default_factory=list)

    def matches(self, alert: Alert) -> bool:
        if alert.severity.rank < self.severity.rank:
            return False
        if self.entity_types and alert.entity_type.value not in self.entity_types:
            return False
        if self.rules and not any(fnmatch.fnmatchcase(alert.rule_id, p) for p in self.rules):
            return False
        return not self.tags or any(t in alert.tags for t in self.tags)


class ActionSpec(StrictModel):
    scope: Scope
    type: DecisionType
    duration: float = 3600.0
    #: Throttle only: e.g. ``30/min``.
    rate: str | None = None
    burst: int | None = Field(default=None, ge=1)
    #: Range scope only: prefix length of the range built around the alert's IPs.
    prefix: int = Field(default=24, ge=8, le=128)

    _duration = field_validator("duration", mode="before")(_duration_field)

    @model_validator(mode="after")
    def _check_rate(self) -> ActionSpec:
        if self.type is DecisionType.THROTTLE:
            if self.rate is None:
                raise ValueError("a throttle needs a rate, e.g. rate: 30/min")
            try:
                Rate.parse(self.rate, self.burst)
            except InputError as exc:
                raise ValueError(str(exc)) from None
        elif self.rate is not None:
            raise ValueError("rate is only for type throttle")
        return self

    def parsed_rate(self) -> Rate | None:
        return Rate.parse(self.rate, self.burst) if self.rate else None


class PolicyRule(StrictModel):
    name: str
    when: AlertMatch = AlertMatch()
    then: list[ActionSpec] = Field(default_factory=list)
    #: Channel names (from the operator's configuration); empty = every configured channel.
    notify: list[str] = Field(default_factory=list)


class Escalation(StrictModel):
    #: Each repeat offence within ``window`` multiplies the duration by ``factor``.
    factor: float = Field(default=4.0, ge=1.0)
    max_duration: float = 7 * 86400.0
    window: float = 30 * 86400.0

    _durations = field_validator("max_duration", "window", mode="before")(_duration_field)


class PolicySpec(StrictModel):
    name: str
    description: str = ""
    simulation: bool = False
    escalation: Escalation = Escalation()
    protected: list[ProtectedEntity] = Field(default_factory=list)
    caps: SafetyCaps | None = None
    rules: list[PolicyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> PolicySpec:
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("two policy rules have the same name")
        return self


def _builtin(name: str) -> tuple[str, str] | None:
    ref = resources.files("rempart.respond").joinpath("policies", f"{name}.yaml")
    if ref.is_file():
        return ref.read_text(encoding="utf-8"), f"<builtin policy {name}>"
    return None


def parse_policy(text: str, *, where: str) -> PolicySpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"not valid YAML: {problem}", where=where + line) from None
    if not isinstance(data, dict):
        raise ConfigError("a policy must be a mapping of keys", where=where)
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{key}: {msg}", where=where) from None


def load_policy(name_or_path: str) -> PolicySpec:
    """A built-in policy by name, or a YAML file."""
    builtin = _builtin(name_or_path) if "/" not in name_or_path else None
    if builtin is not None:
        return parse_policy(builtin[0], where=builtin[1])
    path = Path(name_or_path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("response policy not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read response policy: {exc}", where=str(path)) from None
    return parse_policy(text, where=str(path))
