"""The configuration file: one YAML document validated by Pydantic, failing closed.

An unknown key or a wrong type stops start-up with one line naming the file, the line, the key
and what was expected. Nothing falls back silently to defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from rempart.cases.settings import CasesSettings
from rempart.detect.settings import DetectionSettings
from rempart.errors import ConfigError
from rempart.respond.settings import ResponseSettings
from rempart.settings import StrictModel

DEFAULT_HOME = Path("~/.local/share/rempart")


class SourceSettings(StrictModel):
    """One input: a file path (glob allowed), or ``-`` for stdin."""

    name: str | None = None
    path: str
    format: Literal["combined", "jsonl"] = "combined"
    follow: bool = False


class JsonMapping(StrictModel):
    """Field names of a non-ECS JSON layout: ECS name -> dotted path in the input object."""

    fields: dict[str, str] = Field(default_factory=dict)
    #: strptime format of the time field, or "iso8601" / "epoch" / "epoch_ms".
    time_format: str = "iso8601"


class KeySettings(StrictModel):
    #: Key file for beneficiary tokens (created with mode 0600 on first use).
    token_key_file: Path = DEFAULT_HOME / "token.key"
    #: Environment variable that may hold the key as ``<key id>:<hex>``; it wins over the file.
    token_key_env: str = "REMPART_TOKEN_KEY"  # noqa: S105 - a variable name


class StateSettings(StrictModel):
    #: SQLAlchemy URL of durable state (decisions, incidents, engine checkpoints).
    url: str = "sqlite:///" + str(DEFAULT_HOME.expanduser() / "state.db")
    #: Directory of the event archive and exposure ledger (Parquet, partitioned by day).
    archive_dir: Path = DEFAULT_HOME / "archive"
    #: Directory of quarantined input (malformed lines with their origin).
    quarantine_dir: Path = DEFAULT_HOME / "quarantine"


class Config(StrictModel):
    #: Route profile: a built-in name (``tiers-payant``) or a YAML file path.
    profile: str = "tiers-payant"
    sources: list[SourceSettings] = Field(default_factory=list)
    json_mapping: JsonMapping | None = None
    #: Account directory (CSV with columns account, kind, organization_id): peer groups and
    #: organisations of practitioner accounts. Without it, the profile's kind_pattern is used.
    directory: Path | None = None
    #: Care relationships (CSVs with columns account, beneficiary): the operator's claims
    #: history, which beneficiaries each account has billed before (docs/care-history.md).
    care_history: list[Path] = Field(default_factory=list)
    keys: KeySettings = KeySettings()
    state: StateSettings = StateSettings()
    detection: DetectionSettings = DetectionSettings()
    response: ResponseSettings = ResponseSettings()
    cases: CasesSettings = CasesSettings()

    @model_validator(mode="after")
    def _check_sources(self) -> Config:
        names = [s.name or s.path for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("two sources have the same name")
        return self


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next((kv for kv in node.value if getattr(kv[0], "value", None) == part), None)
            if pair is None:
                return line
            key_node, node = pair
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    if "input" in err and not isinstance(err["input"], dict | list):
        msg += f" (got {err['input']!r})"
    return msg


def parse_config(text: str, *, where: str = "<config>") -> Config:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where + line
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of keys", where=where)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(first["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line_no = _line_of(node, loc)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(
            f"{key}: {_describe(dict(first))}{more}",
            where=f"{where}:{line_no}" if line_no else where,
        ) from None


def load_config(path: Path | None) -> Config:
    """Load and validate ``path``; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("configuration file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration: {exc}", where=str(path)) from None
    return parse_config(text, where=str(path))
