"""Rule specs: YAML documents validated into frozen ``RuleSpec`` objects, every problem located.

One rule per YAML document. ``parse_rule_file`` returns the specs and the list of problems
(``RuleError`` with ``file:line``) so that ``rempart rules lint`` reports all of them at once;
``load_rules`` (in :mod:`rempart.detect.loader`) refuses a pack with any problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from rempart.alerts import EntityType, Severity
from rempart.detect.expr import BoolOp, ExprError, Node, parse, resolve_field
from rempart.detect.yamlnodes import LList, LMap, load_documents
from rempart.errors import RuleError

RULE_TYPES = (
    "match",
    "event_count",
    "value_count",
    "temporal_ordered",
    "new_value",
    "baseline",
    "cadence",
    "surprise",
    "risk",
    "campaign",
)
QUANTITIES = (
    "distinct_beneficiaries",
    "new_beneficiaries",
    "novelty_share",
    "reads_without_claim",
    "new_without_claim",
)
_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_TECH_RE = re.compile(r"^T\d{4}(\.\d{3})?$")
_DUR_RE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[smhd])+\s*$")
_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_DUR_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_WINDOW = 1.0
MAX_WINDOW = 30 * 86400.0


def parse_duration(value: Any) -> float | None:
    """Seconds in ``"90s"``, ``"5m"``, ``"2h"``, ``"1d 6h"`` (or a bare number of seconds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _DUR_RE.match(value):
        return sum(float(n) * _DUR_UNITS[u] for n, u in _DUR_PART.findall(value))
    return None


@dataclass(frozen=True, slots=True)
class StepSpec:
    filter: str
    count: int = 1
    #: Count distinct values of this field instead of events (e.g. beneficiary_token).
    distinct: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class SampleSpec:
    name: str
    line: int
    events: Any
    #: Expected alerts: list of {"entity": ..., "min_count"?: n}; empty list = must not alert.
    expect: tuple[dict[str, Any], ...]
    #: Entities for which the rule must NOT raise.
    forbid: tuple[str, ...]
    #: Other rules loaded together with this one for the sample (risk, campaign rules).
    with_rules: tuple[str, ...]
    start: str
    #: Care relationships loaded before the events (``Engine.add_care_history``): account ->
    #: beneficiary tokens. None: the sample runs without (the log alone).
    care_history: dict[str, tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    version: int
    title: str
    type: str
    severity: Severity
    description: str
    technique: tuple[str, ...]
    false_positives: tuple[str, ...]
    where: str  # file:line of the document
    filter: str = "true"
    group_by: tuple[str, ...] = ("user_name",)
    entity: EntityType = EntityType.ACCOUNT
    alert: bool = True
    risk: float = 0.0
    dedupe: float = 3600.0
    tags: tuple[str, ...] = ()
    window: float = 0.0
    threshold: float = 0.0
    field: str | None = None
    #: ``value_count``: a filter whose events take their ``field`` value out of the count of
    #: their key (a failed login followed by a success is a typo, not a guess).
    cleared_by: str | None = None
    steps: tuple[StepSpec, ...] = ()
    learning: float = 0.0
    quantity: str | None = None
    history_days: int = 30
    min_history: int = 7
    peer_group: str | None = "account_kind"
    peer_quantile: float = 0.95
    own_factor: float = 3.0
    peer_factor: float = 1.5
    min_value: float = 0.0
    min_reads: int = 20
    span_days: int = 1
    claim_window: float = 3600.0
    min_events: int = 30
    max_cv: float = 0.2
    max_interval: float = 30.0
    half_life: float = 6 * 3600.0
    signals: tuple[str, ...] = ()
    min_accounts: int = 5
    #: ``risk``: distinct signal rules (still contributing a point or more) the score needs.
    min_signals: int = 1
    #: ``surprise``: spans (days) tested, overall false-alarm probability per test, prior weight.
    spans: tuple[int, ...] = (1, 3, 7)
    alpha: float = 1e-5
    #: ``surprise``: ``alpha`` when the deployment loads care relationships (``care_history``):
    #: "never read before" then means no care relationship at all, a rarer and steadier event.
    care_alpha: float | None = None
    prior_weight: float = 50.0
    samples: tuple[SampleSpec, ...] = ()

    def observed_filter(self) -> Node:
        """The events the rule is offered: those of its filter, and those of ``cleared_by``
        (which take a value out of a ``value_count``)."""
        node = parse(self.filter)
        if self.cleared_by is None:
            return node
        return BoolOp("or", (node, parse(self.cleared_by)))

    @property
    def notes_novelty(self) -> bool:
        """A ``new_value`` rule on accounts: its signals give account alerts' explanations
        their "new IP and client since ..." context."""
        return self.type == "new_value" and self.entity == EntityType.ACCOUNT and bool(self.field)


class _Checker:
    """Collects problems while reading one rule document."""

    def __init__(self, path: str, doc: LMap):
        self.path = path
        self.doc = doc
        self.problems: list[RuleError] = []
        self.used: set[str] = set()

    def problem(self, line: int, message: str) -> None:
        rid = self.doc.get("id") if isinstance(self.doc.get("id"), str) else None
        prefix = f"rule {rid}: " if rid else ""
        self.problems.append(RuleError(prefix + message, where=f"{self.path}:{line}"))

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.doc:
            if required:
                self.problem(self.doc.line, f"required field {key!r} is missing")
            return default
        value = self.doc[key]
        line = self.doc.line_of(key)
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.problem(line, f"{key}: expected a number, got {value!r}")
            return default
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.problem(line, f"{key}: expected {names}, got {type(value).__name__} {value!r}")
            return default
        if check is not None:
            msg = check(value)
            if msg:
                self.problem(line, f"{key}: {msg}")
                return default
        return value

    def duration(self, key: str, default: float, *, required: bool = False) -> float:
        self.used.add(key)
        if key not in self.doc:
            if required:
                self.problem(self.doc.line, f"required field {key!r} is missing")
            return default
        raw = self.doc[key]
        secs = parse_duration(raw)
        line = self.doc.line_of(key)
        if secs is None:
            self.problem(line, f"{key}: {raw!r} is not a duration (e.g. 90s, 5m, 2h, 30d)")
            return default
        if not MIN_WINDOW <= secs <= MAX_WINDOW:
            self.problem(line, f"{key}: {raw!r} is outside 1s..30d")
            return default
        return secs

    def expression(self, text: str, line: int, what: str) -> None:
        try:
            parse(text)
        except ExprError as exc:
            self.problem(line, f"{what}: {exc.message} (column {exc.column})")

    def fields(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        self.used.add(key)
        if key not in self.doc:
            return default
        raw = self.doc[key]
        line = self.doc.line_of(key)
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            self.problem(line, f"{key}: expected a field name or a list of field names")
            return default
        out = []
        for name in items:
            resolved = resolve_field(name)
            if resolved is None:
                self.problem(line, f"{key}: unknown field {name!r}")
                continue
            out.append(resolved[0])
        return tuple(out)

    def strings(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        self.used.add(key)
        if key not in self.doc:
            if required:
                self.problem(self.doc.line, f"required field {key!r} is missing")
            return ()
        raw = self.doc[key]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            self.problem(self.doc.line_of(key), f"{key}: expected text or a list of texts")
            return ()
        return tuple(items)


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _fraction(v: Any) -> str | None:
    return None if 0 < v < 1 else "must be between 0 and 1 (exclusive)"


_TYPE_FIELDS: dict[str, set[str]] = {
    "match": set(),
    "event_count": {"window", "threshold"},
    "value_count": {"window", "threshold", "field", "cleared_by"},
    "temporal_ordered": {"window", "steps"},
    "new_value": {"field", "learning"},
    "baseline": {
        "quantity",
        "history_days",
        "min_history",
        "peer_group",
        "peer_quantile",
        "own_factor",
        "peer_factor",
        "min_value",
        "min_reads",
        "claim_window",
        "span_days",
    },
    "cadence": {"min_events", "max_cv", "max_interval"},
    "surprise": {
        "history_days",
        "peer_group",
        "claim_window",
        "spans",
        "alpha",
        "care_alpha",
        "prior_weight",
        "min_reads",
        "min_value",
    },
    "risk": {"threshold", "half_life", "signals", "min_signals"},
    "campaign": {"signals", "window", "min_accounts", "alpha"},
}
_COMMON = {
    "id",
    "version",
    "title",
    "type",
    "severity",
    "description",
    "technique",
    "false_positives",
    "filter",
    "group_by",
    "entity",
    "alert",
    "risk",
    "dedupe",
    "tags",
    "samples",
}


def _steps(c: _Checker) -> tuple[StepSpec, ...]:
    raw = c.get("steps", list, required=True)
    if raw is None:
        return ()
    assert isinstance(raw, LList)
    if len(raw) < 2:
        c.problem(raw.line, "steps: a sequence needs at least two steps")
    out = []
    for i, item in enumerate(raw):
        line = raw.line_of(i)
        if not isinstance(item, LMap):
            c.problem(line, f"steps[{i}]: expected a mapping with 'filter'")
            continue
        unknown = set(item) - {"filter", "count", "distinct", "name"}
        for key in sorted(unknown):
            c.problem(item.line_of(key), f"steps[{i}]: unknown field {key!r}")
        flt = item.get("filter")
        if not isinstance(flt, str):
            c.problem(line, f"steps[{i}]: 'filter' (text) is required")
            continue
        c.expression(flt, item.line_of("filter"), f"steps[{i}].filter")
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            c.problem(item.line_of("count"), f"steps[{i}].count: expected an integer >= 1")
            count = 1
        distinct = item.get("distinct")
        if distinct is not None:
            resolved = resolve_field(distinct) if isinstance(distinct, str) else None
            if resolved is None:
                c.problem(item.line_of("distinct"), f"steps[{i}].distinct: unknown field")
                distinct = None
            else:
                distinct = resolved[0]
        out.append(StepSpec(flt, count, distinct, str(item.get("name", f"step {i + 1}"))))
    return tuple(out)


def _samples(c: _Checker) -> tuple[SampleSpec, ...]:
    raw = c.get("samples", list, default=None)
    if raw is None:
        return ()
    assert isinstance(raw, LList)
    out = []
    for i, item in enumerate(raw):
        line = raw.line_of(i)
        if not isinstance(item, LMap):
            c.problem(line, f"samples[{i}]: expected a mapping")
            continue
        unknown = set(item) - {
            "name",
            "events",
            "expect",
            "forbid",
            "with_rules",
            "start",
            "care_history",
        }
        for key in sorted(unknown):
            c.problem(item.line_of(key), f"samples[{i}]: unknown field {key!r}")
        events = item.get("events")
        if not isinstance(events, list) or not events:
            c.problem(line, f"samples[{i}]: 'events' must be a non-empty list")
            continue
        expect = item.get("expect", [])
        if not isinstance(expect, list) or not all(
            isinstance(x, dict) and isinstance(x.get("entity"), str) for x in expect
        ):
            c.problem(item.line_of("expect"), f"samples[{i}].expect: list of {{entity: ...}}")
            expect = []
        forbid = item.get("forbid", [])
        if not isinstance(forbid, list) or not all(isinstance(x, str) for x in forbid):
            c.problem(item.line_of("forbid"), f"samples[{i}].forbid: list of entities")
            forbid = []
        if not expect and not forbid:
            c.problem(line, f"samples[{i}]: says neither what it must raise nor what it must not")
        with_rules = item.get("with_rules", [])
        if not isinstance(with_rules, list):
            c.problem(item.line_of("with_rules"), f"samples[{i}].with_rules: list of rule ids")
            with_rules = []
        out.append(
            SampleSpec(
                name=str(item.get("name", f"sample {i + 1}")),
                line=line,
                events=events,
                expect=tuple(dict(x) for x in expect),
                forbid=tuple(forbid),
                with_rules=tuple(str(x) for x in with_rules),
                start=str(item.get("start", "2024-02-01T08:00:00Z")),
                care_history=_sample_care(c, item, i),
            )
        )
    return tuple(out)


def _sample_care(c: _Checker, item: LMap, i: int) -> dict[str, tuple[str, ...]] | None:
    """A sample's ``care_history``: a list of ``{account, beneficiary, count?}``; with
    ``count``, ``{i}`` in the beneficiary runs from 0 to count - 1 (``c{i}``: c0, c1...)."""
    raw = item.get("care_history")
    if raw is None:
        return None
    where = item.line_of("care_history")
    usage = f"samples[{i}].care_history: list of {{account, beneficiary, count?}}"
    if not isinstance(raw, list):
        c.problem(where, usage)
        return None
    care: dict[str, list[str]] = {}
    for entry in raw:
        count = entry.get("count", 1) if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or set(entry) - {"account", "beneficiary", "count"}
            or not isinstance(entry.get("account"), str)
            or not isinstance(entry.get("beneficiary"), str)
            or not isinstance(count, int)
            or isinstance(count, bool)
            or not 1 <= count <= 100_000
        ):
            c.problem(where, usage)
            return None
        tokens = care.setdefault(entry["account"], [])
        tokens.extend(entry["beneficiary"].replace("{i}", str(k)) for k in range(count))
    return {k: tuple(v) for k, v in care.items()}


def _peer_group(c: _Checker, doc: LMap) -> str | None:
    """``peer_group``: ``account_kind`` (the default) or ``null`` for no peer group."""
    if "peer_group" in doc and doc["peer_group"] is None:
        c.used.add("peer_group")
        return None
    pg = c.fields("peer_group", ("account_kind",))
    return pg[0] if pg else None


def _surprise_fields(c: _Checker, doc: LMap, kw: dict[str, Any]) -> None:
    kw["history_days"] = c.get(
        "history_days", int, 30, check=lambda v: None if 2 <= v <= 90 else "must be 2..90"
    )
    kw["peer_group"] = _peer_group(c, doc)
    kw["claim_window"] = c.duration("claim_window", 3600.0)
    spans = c.get("spans", list, [1, 3, 7])
    if spans is not None:
        if (
            not spans
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in spans)
            or not all(1 <= v < kw["history_days"] for v in spans)
        ):
            c.problem(
                doc.line_of("spans"),
                "spans: expected a non-empty list of whole days, each below history_days",
            )
        else:
            kw["spans"] = tuple(sorted(set(spans)))
    kw["alpha"] = float(c.get("alpha", (int, float), 1e-5, check=_fraction))
    care_alpha = c.get("care_alpha", (int, float), None, check=_fraction)
    kw["care_alpha"] = None if care_alpha is None else float(care_alpha)
    kw["prior_weight"] = float(
        c.get("prior_weight", (int, float), 50.0, check=lambda v: None if v >= 0 else ">= 0")
    )
    kw["min_reads"] = c.get("min_reads", int, 30, check=_positive)
    kw["min_value"] = float(c.get("min_value", (int, float), 3))


_ENTITY_BY_FIELD: dict[tuple[str, ...], EntityType] = {
    ("user_name",): EntityType.ACCOUNT,
    ("source_ip",): EntityType.IP,
    ("organization_id",): EntityType.ORGANIZATION,
    ("session_id",): EntityType.SESSION,
}


def check_rule(doc: Any, path: str, line: int) -> tuple[RuleSpec | None, list[RuleError]]:
    """Validate one document; returns the spec (None if any problem) and every problem found."""
    if not isinstance(doc, LMap):
        return None, [RuleError("a rule must be a mapping of fields", where=f"{path}:{line}")]
    c = _Checker(path, doc)
    rid = c.get(
        "id",
        str,
        "",
        required=True,
        check=lambda v: (
            None
            if _ID_RE.match(v)
            else "expected upper-case words joined by '-', e.g. TP-BRUTE-001"
        ),
    )
    version = c.get("version", int, 1, required=True, check=_positive)
    title = c.get("title", str, "", required=True)
    rtype = c.get(
        "type",
        str,
        "match",
        required=True,
        check=lambda v: (
            None if v in RULE_TYPES else f"unknown rule type {v!r} (one of {', '.join(RULE_TYPES)})"
        ),
    )
    sev_raw = c.get(
        "severity",
        str,
        "medium",
        required=True,
        check=lambda v: (
            None
            if v in Severity.__members__.values()
            else f"unknown severity {v!r} (info, low, medium, high, critical)"
        ),
    )
    description = c.get("description", str, "", required=True)
    technique = c.strings("technique", required=True)
    for t in technique:
        if not _TECH_RE.match(t):
            c.problem(doc.line_of("technique"), f"technique: {t!r} is not an ATT&CK id (T1110.001)")
    false_pos = c.strings("false_positives", required=True)
    if isinstance(doc.get("filter"), bool):  # YAML reads a bare true/false as a boolean
        doc["filter"] = "true" if doc["filter"] else "false"
    flt = c.get("filter", str, "true", required=rtype not in ("risk", "campaign"))
    if "filter" in doc and isinstance(doc["filter"], str):
        c.expression(doc["filter"], doc.line_of("filter"), "filter")
    group_by = c.fields("group_by", ("user_name",))
    entity_raw = c.get(
        "entity",
        str,
        None,
        check=lambda v: (
            None if v in EntityType.__members__.values() else f"unknown entity type {v!r}"
        ),
    )
    entity = (
        EntityType(entity_raw)
        if entity_raw
        else _ENTITY_BY_FIELD.get(group_by, EntityType.CAMPAIGN)
    )
    kw: dict[str, Any] = {}
    if rtype in ("event_count", "value_count", "temporal_ordered", "campaign"):
        kw["window"] = c.duration("window", 0.0, required=True)
    if rtype in ("event_count", "value_count", "risk"):
        kw["threshold"] = float(c.get("threshold", (int, float), 1, required=True, check=_positive))
    if rtype in ("value_count", "new_value"):
        got = c.fields("field", ())
        kw["field"] = got[0] if got else None
        if "field" not in doc:
            c.problem(doc.line, "required field 'field' is missing")
    if rtype == "value_count" and "cleared_by" in doc:
        kw["cleared_by"] = c.get("cleared_by", str, None)
        if isinstance(doc["cleared_by"], str):
            c.expression(doc["cleared_by"], doc.line_of("cleared_by"), "cleared_by")
    if rtype == "temporal_ordered":
        kw["steps"] = _steps(c)
    if rtype == "new_value":
        kw["learning"] = c.duration("learning", 7 * 86400.0)
    if rtype == "baseline":
        kw["quantity"] = c.get(
            "quantity",
            str,
            "distinct_beneficiaries",
            required=True,
            check=lambda v: (
                None
                if v in QUANTITIES
                else f"unknown quantity {v!r} (one of {', '.join(QUANTITIES)})"
            ),
        )
        kw["history_days"] = c.get("history_days", int, 30, check=_positive)
        kw["min_history"] = c.get("min_history", int, 7, check=_positive)
        kw["peer_group"] = _peer_group(c, doc)
        kw["peer_quantile"] = float(c.get("peer_quantile", (int, float), 0.95, check=_fraction))
        kw["own_factor"] = float(c.get("own_factor", (int, float), 3.0, check=_positive))
        kw["peer_factor"] = float(c.get("peer_factor", (int, float), 1.5, check=_positive))
        kw["min_value"] = float(c.get("min_value", (int, float), 0.0))
        kw["min_reads"] = c.get("min_reads", int, 20, check=_positive)
        kw["claim_window"] = c.duration("claim_window", 3600.0)
        kw["span_days"] = c.get(
            "span_days",
            int,
            1,
            check=lambda v: None if 1 <= v <= 30 else "must be between 1 and 30",
        )
        if kw["span_days"] > 1 and kw["quantity"] == "novelty_share":
            c.problem(doc.line_of("span_days"), "span_days needs a count quantity, not a share")
    if rtype == "cadence":
        kw["min_events"] = c.get(
            "min_events", int, 30, check=lambda v: None if v >= 3 else "must be at least 3"
        )
        kw["max_cv"] = float(c.get("max_cv", (int, float), 0.2, check=_positive))
        kw["max_interval"] = c.duration("max_interval", 30.0)
    if rtype == "surprise":
        _surprise_fields(c, doc, kw)
    if rtype == "risk":
        kw["half_life"] = c.duration("half_life", 6 * 3600.0)
        kw["signals"] = c.strings("signals")
        kw["min_signals"] = c.get("min_signals", int, 1, check=_positive)
    if rtype == "campaign":
        kw["signals"] = c.strings("signals", required=True)
        kw["min_accounts"] = c.get(
            "min_accounts", int, 5, check=lambda v: None if v >= 2 else "must be at least 2"
        )
        kw["alpha"] = float(c.get("alpha", (int, float), 1e-5, check=_fraction))
    window = kw.get("window", 0.0)
    dedupe = c.duration("dedupe", max(window, 3600.0))
    alert = c.get("alert", bool, True)
    risk = float(c.get("risk", (int, float), 0.0))
    if not alert and risk <= 0 and rtype not in ("risk", "campaign"):
        c.problem(doc.line_of("alert"), "a rule with alert: false must contribute risk (> 0)")
    tags = c.strings("tags")
    samples = _samples(c)
    if "samples" not in doc or not samples:
        c.problem(doc.line, "no samples: every rule ships sample events and expected alerts")
    allowed = _COMMON | _TYPE_FIELDS.get(rtype, set())
    for key in doc:
        if key not in allowed:
            hint = (
                " (not valid for type " + rtype + ")"
                if key in set().union(*_TYPE_FIELDS.values())
                else ""
            )
            c.problem(doc.line_of(key), f"unknown field {key!r}{hint}")
    if c.problems:
        return None, c.problems
    spec = RuleSpec(
        id=rid,
        version=version,
        title=title,
        type=rtype,
        severity=Severity(sev_raw),
        description=description,
        technique=technique,
        false_positives=false_pos,
        where=f"{path}:{doc.line}",
        filter=flt,
        group_by=group_by,
        entity=entity,
        alert=alert,
        risk=risk,
        dedupe=dedupe,
        tags=tags,
        samples=samples,
        **kw,
    )
    return spec, []


def parse_rule_text(text: str, path: str) -> tuple[list[RuleSpec], list[RuleError]]:
    """Every valid spec of a YAML file and every problem found in it."""
    try:
        docs = load_documents(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return [], [
            RuleError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=f"{path}:{line}")
        ]
    specs: list[RuleSpec] = []
    problems: list[RuleError] = []
    for line, doc in docs:
        spec, errs = check_rule(doc, path, line)
        problems.extend(errs)
        if spec is not None:
            specs.append(spec)
    return specs, problems


def is_lmap(value: Any) -> bool:
    return isinstance(value, LMap)
