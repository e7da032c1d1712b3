"""The detection engine: pure, event-time driven, same alerts for replay and streaming.

``Engine.process(event)`` returns the alerts *created* by that event (after reordering, see
below). Repeated firing of a rule for the same entity while its alert is open (the rule's
``dedupe`` period since the alert's last event) updates that alert in place: ``updates`` += 1,
``last_seen``, ``events``, ``records_exposed``, ``metrics``, ``explanation`` and evidence move.
``engine.alerts`` holds every alert in its current state, and ``take_updated()`` returns the
alerts updated since the last call (for ``rempart watch`` or a policy that reacts to growth).

Out-of-order events: with ``lateness = L`` seconds, events are held until the newest event time
seen is ``L`` past them, then processed in ``(ts, source, line)`` order; ``flush()`` releases the
rest at end of input. So any arrival order that stays within ``L`` gives the same alerts. An event
later than that is still processed (and counted in ``late_events``), in arrival order.

Each event is offered only to the rules whose filter can match its ``(action, outcome)``: per
pair, each rule's filter is specialised once (tests on action and outcome folded away) and only
the residual test, if any, runs per event. Shared per-event facts (beneficiary hash, whether the
account ever read that beneficiary, local day) are computed once in an ``EventContext``, and
baseline rules that see the same events share their per-account day state
(:func:`rempart.detect.baseline.share_read_days`).

Events of an action no rule consumes and that disclose no record change nothing: callers may
drop them before ``process`` (``relevant_actions``). ``events_seen`` counts the events processed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, final

from rempart.alerts import Alert, EntityType, EvidenceRef, alert_id
from rempart.detect.baseline import BaselineRule, local_day, share_read_days
from rempart.detect.baseline_days import _ReadDays
from rempart.detect.care import SurpriseRule
from rempart.detect.exposure import ExposureWatch
from rempart.detect.expr import ByActionOutcome, Pred, as_pred, local_strftime, specialized
from rempart.detect.history import BeneficiaryHistory, beneficiary_hash
from rempart.detect.rollup import CampaignCorrelator, RiskRollup
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import (
    CadenceRule,
    ClearedValueCountRule,
    CompiledRule,
    EventContext,
    EventCountRule,
    Fire,
    MatchRule,
    NewValueRule,
    TemporalOrderedRule,
    ValueCountRule,
    cut_front,
)
from rempart.events import EVENT_FIELDS, Event

EVIDENCE_CAP: Final = 25
#: Released events are cut from the front of the FIFO once there are this many (and half).
FIFO_COMPACT: Final = 4096
EVICT_EVERY: Final = 3600.0
#: Days a per-day signal's day is remembered (see ``_on_fire`` and ``evict``).
PERIOD_MEMORY: Final = 7
NOVELTY_CONTEXT: Final = 86400.0

_RUNTIME: dict[str, type[CompiledRule]] = {
    "match": MatchRule,
    "event_count": EventCountRule,
    "value_count": ValueCountRule,
    "temporal_ordered": TemporalOrderedRule,
    "new_value": NewValueRule,
    "baseline": BaselineRule,
    "cadence": CadenceRule,
    "surprise": SurpriseRule,
}
_NOVELTY_LABEL: Final = {"ip24": "IP", "ip16": "network", "source_ip": "IP", "user_agent": "client"}


@final
class _Entry:
    """A dispatch entry: the rule's position, the rule or None, the group of baseline rules
    sharing their day state or None, the residual filter or None. Typed, so that the compiled
    engine calls ``observe`` as a C function (a bound method would go through Python's call
    protocol); a class, not a tuple, because unpacking a typed tuple checks each item's type
    at every event, and a check against a class with subclasses (``CompiledRule``) walks the
    item's bases: eight ``PyType_IsSubtype`` calls per event."""

    __slots__ = ("group", "pos", "pred", "rule")

    def __init__(
        self, pos: int, rule: CompiledRule | None, group: _ReadDays | None, pred: Pred | None
    ):
        self.pos = pos
        self.rule = rule
        self.group = group
        self.pred = pred


def compile_rule(spec: RuleSpec) -> CompiledRule:
    if spec.type == "value_count" and spec.cleared_by is not None:
        return ClearedValueCountRule(spec)
    return _RUNTIME[spec.type](spec)


class _FireSpec:
    """What acting on a fire reads of its rule's spec, as compiled attributes: ``RuleSpec``
    is an interpreted dataclass, where each attribute read is a generic lookup, and an alert
    update reads about ten of them."""

    __slots__ = (
        "alert",
        "dedupe",
        "entity",
        "entity_value",
        "id",
        "is_campaign",
        "is_ip",
        "is_signal",
        "spec",
        "tried",
    )

    def __init__(self, spec: RuleSpec, is_signal: bool):
        self.spec = spec
        self.id = spec.id
        self.entity = spec.entity
        self.entity_value: str = spec.entity.value
        self.dedupe = spec.dedupe
        self.alert = spec.alert
        #: Whether a fire is also a signal (risk roll-up, campaign, novelty context).
        self.is_signal = is_signal
        #: The rule counts accounts tried from its entity (spraying, stuffing).
        self.tried = spec.field == "user_name"
        self.is_campaign = spec.type == "campaign"
        self.is_ip = spec.entity == EntityType.IP


def _hhmm(ts: float) -> str:
    return local_strftime(ts, "%H:%M")


class Engine:
    """Compiled rules plus their state; feed events with ``process``, finish with ``flush``."""

    def __init__(
        self,
        rules: Sequence[RuleSpec],
        *,
        lateness: float = 0.0,
        record_signals: bool = False,
        reference: bool = False,
        track_first_seen: bool = True,
    ):
        """``reference``: no shared state between rules and full filters on every event (the
        straightforward per-rule evaluation the optimised paths are tested against).
        ``track_first_seen=False``: keep no first-seen history unless a rule reads it
        (``reads_first_seen``); for a throw-away engine whose state is never saved."""
        self.specs = {s.id: s for s in rules}
        self.rules = [compile_rule(s) for s in rules if s.type in _RUNTIME]
        self.reference = reference
        self._first_seen = track_first_seen or any(r.reads_first_seen for r in self.rules)
        if not reference:
            share_read_days(self.rules)
        self.risks = [RiskRollup(s) for s in rules if s.type == "risk"]
        self.campaigns = [CampaignCorrelator(s) for s in rules if s.type == "campaign"]
        self.campaign_by_signal: dict[str, list[CampaignCorrelator]] = {}
        for c in self.campaigns:
            for sid in c.spec.signals:
                self.campaign_by_signal.setdefault(sid, []).append(c)
        self._fire_specs = {
            s.id: _FireSpec(
                s, s.risk > 0 or s.id in self.campaign_by_signal or s.type == "new_value"
            )
            for s in rules
        }
        #: The fire specs of ``self.rules``, by rule position.
        self._rule_fs = [self._fire_specs[r.spec.id] for r in self.rules]
        self.lateness = lateness
        self.history = BeneficiaryHistory()
        #: Whether care relationships from outside the log were loaded (``add_care_history``).
        self.care_history = False
        self._alerts: dict[str, Alert] = {}
        #: Alerts whose explanation awaits rendering from their latest firing.
        self._stale: dict[str, tuple[Fire, float]] = {}
        self.events_seen = 0
        self.late_events = 0
        self.record_signals = record_signals
        #: (rule id, entity) of every fresh signal, when ``record_signals`` (sample tests).
        self.signals: list[tuple[str, str, float]] = []
        self._position = {id(r): i for i, r in enumerate(self.rules)}
        self._open: dict[tuple[str, str, str], Alert] = {}
        self.watch = ExposureWatch(self.specs, self._alerts)
        # Direct references for the per-event path (the watch mutates them in place).
        self._watch_account = self.watch.accounts
        self._watch_ip = self.watch.ips
        self._watch_targets = self.watch.targets
        self._signal_seen: dict[tuple[str, str], float] = {}
        #: The period (day) each per-period signal last counted for (see ``_on_fire``).
        self._signal_period: dict[tuple[str, str], int] = {}
        self._novelty: dict[str, dict[str, float]] = {}
        self._updated: set[str] = set()
        #: Held events (lateness > 0): ``_fifo[_head:]`` while they arrive in
        #: ``(ts, source, line)`` order (the usual case: a sorted log), else ``_heap``; never
        #: both non-empty. A list and a read position: mypyc compiles a list's operations, not
        #: a deque's.
        self._heap: list[tuple[float, str, int, int, Event]] = []
        self._fifo: list[Event] = []
        self._head = 0
        self._seq = 0
        self._max_ts = float("-inf")
        self._next_evict = float("-inf")
        self._ctx = EventContext()
        #: (action, outcome) -> the entries of the rules an event with them is offered to
        #: (``_rules_for``), in rule order. Made last: ``_rules_for`` reads the rules.
        self._dispatch: ByActionOutcome[tuple[_Entry, ...]] = ByActionOutcome(self._rules_for)

    # -- feeding -------------------------------------------------------------------------
    def process(self, ev: Event) -> list[Alert]:
        """Offer one event; returns the alerts created as a result (possibly none)."""
        out: list[Alert] = []
        self._feed(ev, out)
        return out

    def _feed(self, ev: Event, out: list[Alert]) -> None:
        """``process``, adding the alerts created to ``out``."""
        ts = ev.ts
        if self.lateness <= 0:
            if ts >= self._max_ts:
                self._max_ts = ts
            else:
                self.late_events += 1
            self._run(ev, out)
            return
        if ts > self._max_ts:
            self._max_ts = ts
        limit = self._max_ts - self.lateness
        if ts < limit:
            self.late_events += 1
            self._run(ev, out)
            return
        heap = self._heap
        fifo = self._fifo
        if not heap:
            if self._head < len(fifo):
                last = fifo[-1]
                # (source, line) order among equal times; the same source compared first:
                # compiled, ``==`` on two strings is a pointer test when they are the same
                # object, where ``<`` is a generic comparison.
                if ts < last.ts or (
                    ts == last.ts
                    and (
                        ev.line < last.line if ev.source == last.source else ev.source < last.source
                    )
                ):
                    self._hold_in_heap()
            if not heap:
                # In order: a FIFO releases in the same order as the heap would (ties by arrival).
                fifo.append(ev)
                head = self._head
                while head < len(fifo) and fifo[head].ts <= limit:
                    held = fifo[head]
                    head += 1
                    self._head = head  # released before it runs, as popleft() did
                    self._run(held, out)
                self._head = cut_front(fifo, head, FIFO_COMPACT)
                return
        self._seq += 1
        heapq.heappush(heap, (ts, ev.source, ev.line, self._seq, ev))
        while heap and heap[0][0] <= limit:
            self._run(heapq.heappop(heap)[4], out)

    def _hold_in_heap(self) -> None:
        """An event arrived out of order: move the held FIFO (sorted, so already a heap)."""
        heap = self._heap
        for ev in self._fifo[self._head :]:
            self._seq += 1
            heap.append((ev.ts, ev.source, ev.line, self._seq, ev))
        self._fifo.clear()
        self._head = 0

    def process_many(self, events: Iterable[Event]) -> list[Alert]:
        out: list[Alert] = []
        for ev in events:
            self._feed(ev, out)
        return out

    def flush(self) -> list[Alert]:
        """Process every held event (end of input)."""
        out: list[Alert] = []
        while self._heap:
            self._run(heapq.heappop(self._heap)[4], out)
        fifo = self._fifo
        while self._head < len(fifo):
            held = fifo[self._head]
            self._head += 1
            self._run(held, out)
        fifo.clear()
        self._head = 0
        return out

    @property
    def alerts(self) -> dict[str, Alert]:
        """Every alert by id, in its current state."""
        self._render_stale()
        return self._alerts

    def _render_stale(self) -> None:
        for aid, (fire, ts) in self._stale.items():
            alert = self._alerts[aid]
            alert.explanation = fire.render() + self._context(fire.key, ts, alert.entity_type)
        self._stale.clear()

    def take_updated(self) -> list[Alert]:
        """Alerts updated (not created) since the last call."""
        self._render_stale()
        ids, self._updated = self._updated, set()
        return [self._alerts[i] for i in sorted(ids) if i in self._alerts]

    # -- core ----------------------------------------------------------------------------
    def relevant_actions(self, disclosing: Iterable[str] = ()) -> frozenset[str] | None:
        """Actions whose events can change any state or alert (``None``: every action).

        The union of the actions the rules' filters require, plus ``disclosing``: the actions
        whose events may disclose records (the profile's routes with ``discloses``), which feed
        the first-seen history and the exposure counts of open alerts, plus logins: the engine
        reads the successful ones itself (a login from an address an open alert names, and the
        campaigns' base rates).
        """
        out: set[str] = {*disclosing, "auth.login"}
        for rule in self.rules:
            if rule.actions is None:
                return None
            out |= rule.actions
        return frozenset(out)

    def _rules_for(self, action: str, outcome: str) -> tuple[_Entry, ...]:
        """(rule position, rule or group, residual filter or None) in rule order: a rule, or
        one entry for a group of baseline rules sharing their day state (``_ReadDays``)."""
        rules: list[_Entry] = []
        groups: set[int] = set()
        for pos, rule in enumerate(self.rules):
            if rule.actions is not None and action not in rule.actions:
                continue
            if self.reference:
                rules.append(_Entry(pos, rule, None, as_pred(rule.matches)))
                continue
            test = specialized(rule.filter_node(), action, outcome)
            if test is False:
                continue
            pred = None if test is True else test
            if isinstance(rule, BaselineRule) and len(rule.tracker.members) > 1:
                # Members share filter and state: one entry, at the first member's position.
                if id(rule.tracker) not in groups:
                    groups.add(id(rule.tracker))
                    rules.append(_Entry(pos, None, rule.tracker, pred))
                continue
            rules.append(_Entry(pos, rule, None, pred))
        return tuple(rules)

    def _run(self, ev: Event, out: list[Alert]) -> None:
        self.events_seen += 1
        ctx = self._ctx
        ctx.seq += 1
        ctx.ts_box = ev.ts
        token = ev.beneficiary_token
        if token is not None:
            # The int object every rule stores or looks up: boxed here once (as ``Any``: read
            # back from ``ctx.bh``, which mypy narrows to ``int``, it would be unboxed and
            # boxed again). Compiled, each rule that narrowed ``ctx.bh`` to ``int`` made a new
            # object at every set or list operation (four more per read).
            bh: Any = beneficiary_hash(token)
            ctx.bh = bh
            user = ev.user_name
            if ev.categories and user is not None:
                ctx.novel = self.history.observe(user, bh) if self._first_seen else False
                # (both empty until an alert is open: their sizes are read without a lookup)
                if (self._watch_account and user in self._watch_account) or (
                    self._watch_ip and ev.source_ip in self._watch_ip
                ):
                    self.watch.expose(ev, bh)
            else:
                ctx.novel = False
        else:
            ctx.bh = None
            ctx.novel = False
        rules = self._dispatch.get(ev.action, ev.outcome)
        fired: list[tuple[int, Any, Any]] | None = None
        for entry in rules:
            pred = entry.pred
            if pred is None or pred.test(ev):
                observer: Any
                fire: Any  # a Fire, or a group's fires by member index
                rule = entry.rule
                if rule is not None:
                    observer = rule
                    fire = rule.observe(ev, ctx)
                else:
                    group = entry.group
                    assert group is not None  # an entry holds a rule or a group
                    observer = group
                    fire = group.observe(ev, ctx)
                if fire is not None:
                    if fired is None:
                        fired = []
                    fired.append((entry.pos, observer, fire))
        if fired is not None:
            self._emit(fired, ev, out)
        if ev.action == "auth.login" and ev.outcome == "success":
            if ev.source_ip in self._watch_targets:
                self._updated.update(self.watch.compromised(ev))
            for camp in self.campaigns:  # who uses which client and network: base rates
                camp.login(ev)
        if ev.ts >= self._next_evict:
            self._evict(ev.ts)

    def _emit(self, fired: list[tuple[int, Any, Any]], ev: Event, out: list[Alert]) -> None:
        """Act on this event's fires in rule order (rules never read what firing changes, so
        acting after every rule observed the event is the same as acting in between)."""
        items: list[tuple[int, _FireSpec, Fire]] = []
        by_pos = self._rule_fs
        for pos, rule, fire in fired:
            if isinstance(fire, list):  # a group of baseline rules: fires by member index
                for member, f in zip(rule.members, fire, strict=True):
                    if f is not None:
                        at = self._position[id(member)]
                        items.append((at, by_pos[at], f))
            else:
                items.append((pos, by_pos[pos], fire))
        if len(items) > 1:
            items.sort(key=lambda item: item[0])
        for _pos, fs, f in items:
            self._on_fire(fs, ev, f, out)

    def _on_fire(self, fs: _FireSpec, ev: Event, fire: Fire, out: list[Alert]) -> None:
        if fs.is_signal:
            sk = (fs.id, fire.key)
            period = fire.period
            if period is not None:
                # Judged per day: one signal per entity and day. A day's excess settled the
                # next morning (its last reads' claim windows closed) is that day again.
                if self._signal_period.get(sk) != period:
                    self._signal_period[sk] = period
                    self._signal(fs.spec, ev, fire, out)
            else:
                last = self._signal_seen.get(sk)
                self._signal_seen[sk] = ev.ts
                if last is None or ev.ts - last > fs.dedupe:
                    self._signal(fs.spec, ev, fire, out)
        if fs.alert:
            self._alert(fs, ev, fire, out)

    def _signal(self, spec: RuleSpec, ev: Event, fire: Fire, out: list[Alert]) -> None:
        entity = fire.key
        if self.record_signals:
            self.signals.append((spec.id, entity, ev.ts))
        if spec.notes_novelty and spec.field:
            label = _NOVELTY_LABEL.get(spec.field, spec.field)
            self._novelty.setdefault(entity, {})[label] = ev.ts
        if spec.risk > 0:
            detail = ""
            for risk in self.risks:
                if risk.spec.entity != spec.entity or (
                    risk.spec.signals and spec.id not in risk.spec.signals
                ):
                    continue
                if not detail:
                    # What the signal said, without its entity (the risk alert names it).
                    detail = fire.render().removeprefix(f"{entity}: ")
                f = risk.add(entity, spec.title, spec.risk, ev.ts, detail)
                if f is not None:
                    self._alert(self._fire_specs[risk.spec.id], ev, f, out)
        if spec.entity == EntityType.ACCOUNT:
            for camp in self.campaign_by_signal.get(spec.id, ()):
                f = camp.add(entity, ev)
                if f is not None:
                    self._alert(self._fire_specs[camp.spec.id], ev, f, out)

    def _context(self, account: str, ts: float, etype: EntityType) -> str:
        if etype != EntityType.ACCOUNT:
            return ""
        seen = self._novelty.get(account)
        if not seen:
            return ""
        recent = {lab: t for lab, t in seen.items() if 0 <= ts - t <= NOVELTY_CONTEXT}
        if not recent:
            return ""
        since = min(recent.values())
        return f"; new {' and '.join(sorted(recent))} since {_hhmm(since)}"

    def _alert(self, fs: _FireSpec, ev: Event, fire: Fire, out: list[Alert]) -> None:
        key = (fs.id, fs.entity_value, fire.key)
        ts = ev.ts
        alert = self._open.get(key)
        aid = ""
        if alert is None or ts - alert.last_seen > fs.dedupe:
            if alert is not None and alert.first_seen == fire.first_seen:
                aid = alert.id  # the same inputs to ``alert_id``: the same episode
            else:
                aid = alert_id(fs.id, fs.entity_value, fire.key, fire.first_seen)
            if alert is not None and alert.id != aid:
                alert = None
            if alert is None and aid in self._alerts:
                alert = self._open[key] = self._alerts[aid]  # same episode again: reopen it
        if alert is not None:
            alert.updates += 1
            alert.events += 1
            alert.last_seen = ts
            alert.metrics = fire.metrics
            self._stale[alert.id] = (fire, ts)
            if len(alert.evidence) < EVIDENCE_CAP and ev.line:
                alert.evidence.append(EvidenceRef(ev.source, ev.line))
            if ev.source_ip not in alert.ips and len(alert.ips) < 50:
                alert.ips.append(ev.source_ip)
                if alert.targets:
                    self.watch.watch_tried(alert)
            tried = fs.tried
            if fs.is_campaign and fire.related:
                self.watch.add_accounts(alert, fire.related, False)
            elif tried and fire.related:
                self.watch.add_accounts(alert, fire.related, True)
            elif fs.is_ip and ev.user_name and ev.user_name not in alert.accounts:
                self.watch.add_accounts(alert, [ev.user_name], tried)
            self._updated.add(alert.id)
            return
        spec = fs.spec
        etype = fs.entity
        targets: list[str] = []
        if etype == EntityType.ACCOUNT:
            accounts = [fire.key]
        elif fire.related:
            accounts = sorted(fire.related)[:200]
        elif ev.user_name:
            accounts = [ev.user_name]
        else:
            accounts = []
        if spec.field == "user_name" and etype != EntityType.ACCOUNT:
            # The rule counts accounts tried from its entity (spraying, stuffing): victims.
            targets, accounts = accounts, []
        ips = [fire.key] if etype == EntityType.IP else [ev.source_ip]
        exposed = set(fire.exposed or ())
        alert = Alert(
            id=aid,
            rule_id=spec.id,
            rule_version=spec.version,
            severity=spec.severity,
            title=spec.title,
            entity_type=etype,
            entity=fire.key,
            first_seen=fire.first_seen,
            detected_at=ts,
            last_seen=ts,
            accounts=accounts,
            ips=ips,
            targets=targets,
            events=int(fire.metrics.get("count", fire.metrics.get("distinct", 1))),
            records_exposed=len(exposed),
            explanation=fire.render() + self._context(fire.key, ts, etype),
            technique=list(spec.technique),
            tags=list(spec.tags),
            evidence=[EvidenceRef(ev.source, ev.line)] if ev.line else [],
            metrics=dict(fire.metrics),
        )
        self._open[key] = alert
        self._alerts[aid] = alert
        self.watch.start(alert, exposed)
        out.append(alert)

    def _evict(self, now: float) -> None:
        self._next_evict = now + EVICT_EVERY
        for rule in self.rules:
            rule.evict(now)
        for risk in self.risks:
            risk.evict(now)
        for camp in self.campaigns:
            camp.evict(now)
        for key, alert in list(self._open.items()):
            if now - alert.last_seen > max(self.specs[alert.rule_id].dedupe, 86400.0):
                del self._open[key]
                self.watch.close(alert.id)
        for sk, t in list(self._signal_seen.items()):
            if now - t > max(self.specs[sk[0]].dedupe, 86400.0):
                del self._signal_seen[sk]
        # A day's last reads may be settled days later (the account's next event): the day is
        # remembered a week, whether or not the account fired since.
        today = local_day(now)
        for sk in [k for k, day in self._signal_period.items() if today - day > PERIOD_MEMORY]:
            del self._signal_period[sk]
        self.watch.evict({a.id for a in self._open.values()})

    # -- state ---------------------------------------------------------------------------
    @property
    def reads_first_seen(self) -> bool:
        """Whether this engine keeps a first-seen history (see ``track_first_seen``)."""
        return self._first_seen

    def add_care_history(self, care: Mapping[str, Iterable[int]]) -> int:
        """Load care relationships (account -> beneficiary hashes, from
        :func:`rempart.ingest.care.load_care_history`) into the first-seen history, before
        the events: a beneficiary the account has billed before is no stranger even on its
        first read since deployment. Rules that depend on it switch to their care-history
        settings. Idempotent; returns how many relationships were new to the history."""
        added = 0
        for account, hashes in care.items():
            added += self.history.add_known(account, hashes)
        self._use_care_history()
        return added

    def _use_care_history(self) -> None:
        self.care_history = True
        for rule in self.rules:
            rule.use_care_history()

    def dump_state(self) -> dict[str, Any]:
        """Everything learned, as msgspec-friendly primitives (see ``rempart.detect.store``)."""
        self._render_stale()
        return {
            "rules": {r.spec.id: r.dump() for r in self.rules},
            "risks": {r.spec.id: r.dump() for r in self.risks},
            "campaigns": {c.spec.id: c.dump() for c in self.campaigns},
            "history": self.history.dump(),
            "alerts": [a.to_dict() for a in self._alerts.values()],
            "open": [[k[0], k[1], k[2], a.id] for k, a in self._open.items()],
            "exposure": self.watch.dump(),
            "signal_seen": [[k[0], k[1], t] for k, t in self._signal_seen.items()],
            "signal_period": [[k[0], k[1], p] for k, p in self._signal_period.items()],
            "novelty": {k: dict(v) for k, v in self._novelty.items()},
            "pending": [_event_dict(item[4]) for item in sorted(self._heap)]
            + [_event_dict(ev) for ev in self._fifo[self._head :]],
            "max_ts": self._max_ts if self._max_ts != float("-inf") else None,
            "events_seen": self.events_seen,
            "care_history": self.care_history,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``dump_state`` produced (rules absent from the state start empty)."""
        for rule in self.rules:
            if isinstance(rule, BaselineRule):
                rule.tracker.state = {}
        for group, items in (
            ("rules", self.rules),
            ("risks", self.risks),
            ("campaigns", self.campaigns),
        ):
            saved = state.get(group, {})
            for obj in items:
                if obj.spec.id in saved:
                    obj.load(saved[obj.spec.id])
        self.history.load(state.get("history", {}))
        if state.get("care_history"):
            self._use_care_history()  # the history holds them: judged as when they were loaded
        self._alerts = {a["id"]: Alert.from_dict(a) for a in state.get("alerts", [])}
        self._open = {
            (r, e, k): self._alerts[aid]
            for r, e, k, aid in state.get("open", [])
            if aid in self._alerts
        }
        self.watch.load(state.get("exposure", {}), self._alerts, self._open.values())
        self._signal_seen = {(r, e): t for r, e, t in state.get("signal_seen", [])}
        self._signal_period = {(r, e): p for r, e, p in state.get("signal_period", [])}
        self._novelty = {k: dict(v) for k, v in state.get("novelty", {}).items()}
        self._heap = []
        self._fifo.clear()
        self._head = 0
        for i, d in enumerate(state.get("pending", [])):
            ev = Event(**{**d, "categories": tuple(d.get("categories", ()))})
            self._heap.append((ev.ts, ev.source, ev.line, i, ev))
        heapq.heapify(self._heap)
        self._seq = len(self._heap)
        mt = state.get("max_ts")
        self._max_ts = float(mt) if mt is not None else float("-inf")
        self.events_seen = int(state.get("events_seen", 0))


def _event_dict(ev: Event) -> dict[str, Any]:
    return {
        name: (list(getattr(ev, name)) if name == "categories" else getattr(ev, name))
        for name in EVENT_FIELDS
    }
