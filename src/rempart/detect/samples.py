"""Run each rule's own samples: build events from the sample, feed an engine, check expectations.

Sample events (``samples[].events``) are a list of items, each either an event::

    - {at: 10m, user_name: PH0042, action: auth.login, outcome: failure, source_ip: 203.0.113.7}

or a repetition, which may nest::

    - repeat: 40
      every: 30s
      at: 1h                       # optional offset of the first repetition
      event: {user_name: PH0042, action: beneficiary.read, beneficiary_token: "b{i}"}
      # or events: [ ...items... ]

``at`` is an offset from the start of the enclosing block (the sample's ``start`` for the top
level); without ``at`` an item comes one second after the previous one. In text fields ``{i}`` is
the index of the innermost repetition, ``{j}`` of the one around it, ``{i0}``, ``{i1}``... of the
repetitions from the outermost in, ``{n}`` a global counter.
Unset fields get defaults: ``source_ip`` 10.0.0.1, ``outcome`` success, ``account_kind`` from the
account prefix (PH -> pharmacie), ``categories`` for a successful ``beneficiary.read``, ``status``
from the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rempart.detect.engine import Engine
from rempart.detect.history import beneficiary_hash
from rempart.detect.spec import RuleSpec, SampleSpec, parse_duration
from rempart.errors import RuleError
from rempart.events import EVENT_FIELDS, Event

KINDS = {
    "PH": "pharmacie",
    "MD": "medecin",
    "LB": "laboratoire",
    "IN": "infirmier",
    "OP": "opticien",
    "DE": "dentiste",
    "KI": "kinesitherapeute",
    "HP": "hopital",
    "CS": "centre_sante",
}
READ_CATEGORIES = (
    "identite",
    "sexe",
    "date_naissance",
    "nir",
    "organisme_complementaire",
    "garanties",
)
_EVENT_FIELDS = set(EVENT_FIELDS) - {"ts"}


@dataclass
class SampleResult:
    rule_id: str
    sample: str
    where: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    events: int = 0


class _Builder:
    def __init__(self, where: str):
        self.where = where
        self.events: list[Event] = []
        self.n = 0
        self.last = 0.0

    def fail(self, message: str) -> RuleError:
        return RuleError(message, where=self.where)

    def offset(self, item: dict[str, Any], base: float) -> float:
        if "at" not in item:
            return self.last + 1.0
        secs = parse_duration(item["at"])
        if secs is None:
            raise self.fail(f"bad 'at' offset {item['at']!r}")
        return base + secs

    def items(self, items: list[Any], base: float, idx: tuple[int, ...]) -> None:
        for item in items:
            if not isinstance(item, dict):
                raise self.fail("each sample event must be a mapping")
            if "repeat" in item:
                self.repeat(item, base, idx)
            else:
                self.event(item, self.offset(item, base), idx)

    def repeat(self, item: dict[str, Any], base: float, idx: tuple[int, ...]) -> None:
        count = item["repeat"]
        every = parse_duration(item.get("every", "1s"))
        if not isinstance(count, int) or count < 1 or every is None:
            raise self.fail("repeat needs a count >= 1 and a duration 'every'")
        start = self.offset(item, base)
        body = item.get("events") or ([item["event"]] if "event" in item else None)
        if not isinstance(body, list):
            raise self.fail("repeat needs 'event' or 'events'")
        for i in range(count):
            t = start + i * every
            self.last = t - 1.0
            self.items(body, t, (*idx, i))

    def event(self, item: dict[str, Any], ts: float, idx: tuple[int, ...]) -> None:
        unknown = set(item) - _EVENT_FIELDS - {"at"}
        if unknown:
            raise self.fail(f"unknown event field(s) {', '.join(sorted(unknown))}")
        i = idx[-1] if idx else 0
        j = idx[-2] if len(idx) > 1 else 0
        vals: dict[str, Any] = {}
        for k, v in item.items():
            if k == "at":
                continue
            if isinstance(v, str):
                v = v.replace("{i}", str(i)).replace("{j}", str(j)).replace("{n}", str(self.n))
                for depth, x in enumerate(idx):
                    v = v.replace(f"{{i{depth}}}", str(x))
            vals[k] = v
        vals.setdefault("source_ip", "10.0.0.1")
        vals.setdefault("action", "page")
        vals.setdefault("outcome", "success")
        user = vals.get("user_name")
        if user and "account_kind" not in vals:
            vals["account_kind"] = KINDS.get(str(user)[:2])
        if "categories" in vals:
            vals["categories"] = tuple(vals["categories"] or ())
        elif (
            vals["action"] == "beneficiary.read"
            and vals["outcome"] == "success"
            and vals.get("beneficiary_token")
        ):
            vals["categories"] = READ_CATEGORIES
        if "status" not in vals:
            vals["status"] = (
                200
                if vals["outcome"] == "success"
                else (404 if vals["action"] == "beneficiary.read" else 401)
            )
        self.n += 1
        vals.setdefault("source", "sample")
        vals.setdefault("line", self.n)
        self.events.append(Event(ts=ts, **vals))
        self.last = ts


def build_events(sample: SampleSpec, where: str) -> list[Event]:
    """The sample's events in time order."""
    try:
        start = datetime.fromisoformat(sample.start.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RuleError(f"bad sample start {sample.start!r}", where=where) from None
    b = _Builder(where)
    b.last = start - 1.0
    try:
        b.items(list(sample.events), start, ())
    except TypeError as exc:
        raise RuleError(f"bad sample event: {exc}", where=where) from None
    b.events.sort(key=lambda e: (e.ts, e.line))
    return b.events


def run_sample(spec: RuleSpec, sample: SampleSpec, pack: dict[str, RuleSpec]) -> SampleResult:
    where = f"{spec.where.rsplit(':', 1)[0]}:{sample.line}"
    result = SampleResult(spec.id, sample.name, where, ok=True)
    try:
        events = build_events(sample, where)
    except RuleError as exc:
        return SampleResult(spec.id, sample.name, where, False, [str(exc)])
    rules = [spec, *[pack[r] for r in sample.with_rules if r in pack and r != spec.id]]
    engine = Engine(rules, record_signals=True)
    if sample.care_history is not None:
        engine.add_care_history(
            {acc: map(beneficiary_hash, toks) for acc, toks in sample.care_history.items()}
        )
    for ev in events:
        engine.process(ev)
    engine.flush()
    result.events = len(events)
    raised = {a.entity for a in engine.alerts.values() if a.rule_id == spec.id}
    if not spec.alert:
        raised |= {e for rid, e, _t in engine.signals if rid == spec.id}
    for exp in sample.expect:
        ent = exp["entity"]
        if ent not in raised:
            result.problems.append(f"expected an alert for {ent}, got {sorted(raised) or 'none'}")
    for ent in sample.forbid:
        if ent in raised:
            result.problems.append(f"must not alert for {ent}, but did")
    result.ok = not result.problems
    return result


def run_samples(specs: list[RuleSpec]) -> list[SampleResult]:
    pack = {s.id: s for s in specs}
    return [run_sample(s, smp, pack) for s in specs for smp in s.samples]
