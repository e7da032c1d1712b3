"""Hunting (replay files through the engine) and watching (follow files live): library calls.

Both feed the same ``Engine``; ``hunt`` reads files in order with the ingestion batch path,
``watch`` tails them with ``rempart.ingest.follow.Follower``. With a state URL, the engine's
learning (and, for ``watch``, the follower's position) is restored before and checkpointed
after, so a restart loses neither baselines nor lines.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from rempart.alerts import Alert
from rempart.detect.engine import Engine
from rempart.detect.spec import RuleSpec
from rempart.events import Event
from rempart.gcpause import paused
from rempart.ingest.service import IngestRequest

if TYPE_CHECKING:
    from rempart.detect.hunt_pipe import DecodeTotals
    from rempart.detect.store import StateStore


def _store(url: str) -> StateStore:
    """The state store (imported on use: SQLAlchemy takes 0.3 s to import)."""
    from rempart.detect.store import StateStore

    return StateStore(url)


@dataclass
class HuntResult:
    #: Events decoded from the inputs (``engine.events_seen`` counts only those offered to the
    #: engine: the actions of ``Engine.relevant_actions``).
    events: int = 0
    lines: int = 0
    #: Quarantined lines by reason, and the file they went to (None: none, or no directory).
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_file: str | None = None
    late_events: int = 0
    seconds: float = 0.0
    alerts: list[Alert] = field(default_factory=list)
    state_bytes: int = 0
    #: What the care history loaded (``CareHistory.note``), None without one.
    care_note: str | None = None

    @property
    def quarantined(self) -> int:
        """Quarantined lines, all reasons."""
        return sum(self.quarantined_by_reason.values())

    def summary(self) -> dict[str, Any]:
        by_rule: dict[str, int] = {}
        for a in self.alerts:
            by_rule[a.rule_id] = by_rule.get(a.rule_id, 0) + 1
        return {
            "lines": self.lines,
            "events": self.events,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "quarantine_file": self.quarantine_file,
            "late_events": self.late_events,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
            "alerts": len(self.alerts),
            "alerts_by_rule": dict(sorted(by_rule.items())),
            "records_exposed_max": max((a.records_exposed for a in self.alerts), default=0),
            "state_bytes": self.state_bytes,
        }


def make_engine(specs: list[RuleSpec], lateness: float, state_url: str | None) -> Engine:
    engine = Engine(specs, lateness=lateness)
    if state_url:
        saved = _store(state_url).load()
        if saved is not None:
            engine.load_state(saved)
    return engine


def add_care_history(request: IngestRequest, engines: Iterable[Engine | None]) -> str | None:
    """Load the request's care relationship files into the engines that keep a first-seen
    history; their note (None without files)."""
    if not request.care_history:
        return None
    from rempart.ingest.care import load_care_history

    care = load_care_history(request.care_history, request.tokenizer, request.quarantine_dir)
    for engine in engines:
        if engine is not None and engine.reads_first_seen:
            engine.add_care_history(care.accounts)
    return care.note()


def disclosing_actions(request: IngestRequest) -> frozenset[str]:
    """Actions of the profile's routes that disclose records (they feed first-seen history)."""
    return frozenset(r.action for r in request.profile.spec.routes if r.discloses)


def write_alerts(alerts: Iterable[Alert], out: IO[str]) -> int:
    n = 0
    for a in alerts:
        out.write(json.dumps(a.to_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n


def run_hunt(
    request: IngestRequest,
    specs: list[RuleSpec],
    *,
    lateness: float = 0.0,
    state_url: str | None = None,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 1,
) -> HuntResult:
    """Replay the request's inputs through the rules; alerts sorted by detection time.

    ``workers >= 2``: decode in a forked child process while the engine runs in this one
    (:mod:`rempart.detect.hunt_pipe`); without a state URL, the child also runs the rules
    :func:`~rempart.detect.partition.split_rules` splits off. Same alerts and counts as
    ``workers=1``, in the same order: by detection time, then pack order, entity and id.
    """
    from contextlib import closing
    from functools import partial

    from rempart.detect.hunt_pipe import DecodeTotals, piped_events
    from rempart.detect.partition import split_rules

    # The cyclic collector is off during the replay (restored after): replay keeps millions of
    # small long-lived containers that it would scan at least twice each, and makes no garbage
    # cycles per event (the engine's are built with it). On the 1M-line log: 52,000 unreachable
    # objects at the end with the collector off throughout, the same peak memory, and 2-3% of
    # the CPU time in collections with it on (perf).
    with paused():
        started = time.perf_counter()
        split = split_rules(specs) if workers >= 2 and not state_url else None
        engine = make_engine(split[0] if split else specs, lateness, state_url)
        child = Engine(split[1], lateness=lateness, track_first_seen=False) if split else None
        care_note = add_care_history(request, (engine, child))
        known = set(engine.alerts)
        # A batch at a time: the loop over its events runs in the engine (compiled), not here.
        process_many = engine.process_many
        # Events of other actions change no state (static assets, pages...): never offered.
        disclosing = disclosing_actions(request)
        keep = engine.relevant_actions(disclosing)
        if child is not None and keep is not None:
            theirs = child.relevant_actions(disclosing)
            keep = None if theirs is None else keep | theirs
        totals = DecodeTotals()
        source = partial(piped_events, child_engine=child) if workers >= 2 else _serial_events
        with closing(source(request, keep, totals, on_batch)) as batches:
            for events in batches:
                process_many(events)
        engine.flush()
        result = HuntResult(
            events=totals.events,
            lines=totals.lines,
            quarantined_by_reason=dict(totals.quarantined),
            quarantine_file=totals.quarantine_file,
            late_events=engine.late_events,
            care_note=care_note,
        )
        alerts = [a for a in engine.alerts.values() if a.id not in known]
        alerts += [Alert.from_dict(d) for d in totals.alerts]
        position = {s.id: i for i, s in enumerate(specs)}
        result.alerts = sorted(
            alerts,
            key=lambda a: (a.detected_at, position.get(a.rule_id, -1), a.entity, a.id),
        )
        if state_url:
            result.state_bytes = _store(state_url).save(engine.dump_state())
        result.seconds = time.perf_counter() - started
        return result


def _serial_events(
    request: IngestRequest,
    keep: frozenset[str] | None,
    totals: DecodeTotals,
    on_batch: Callable[[int], None] | None = None,
) -> Generator[list[Event], None, None]:
    """The kept events of the request's inputs, batch by batch, decoded in this process."""
    from rempart.ingest.pipeline import IngestStats
    from rempart.ingest.quarantine import Quarantine

    stats = IngestStats(counts_only=True)
    quarantine = Quarantine(request.quarantine_dir)
    for batch in request.batches(quarantine, stats, keep_actions=keep):
        yield batch.events()
        if on_batch is not None:
            on_batch(stats.lines)
    quarantine.close()
    totals.lines, totals.events = stats.lines, stats.events
    totals.quarantined = dict(quarantine.counts)
    totals.quarantine_file = str(quarantine.path) if quarantine.path else None


def default_workers(paths: Iterable[str]) -> int:
    """2 when the machine has a second core and every input is a file (not stdin), else 1."""
    import os

    files = all(p not in ("-", "/dev/stdin") for p in paths)
    return 2 if files and (os.cpu_count() or 1) >= 2 else 1


def hunt_events(
    events: Iterable[Event], specs: list[RuleSpec], lateness: float = 0.0
) -> list[Alert]:
    """Alerts of an in-memory event stream (tests, notebooks)."""
    engine = Engine(specs, lateness=lateness)
    for ev in events:
        engine.process(ev)
    engine.flush()
    return sorted(engine.alerts.values(), key=lambda a: a.detected_at)


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _sig: int, _frame: FrameType | None) -> None:
        self.requested = True


def run_watch(
    request: IngestRequest,
    specs: list[RuleSpec],
    *,
    lateness: float = 120.0,
    state_url: str | None = None,
    on_alert: Callable[[Alert, bool], None],
    poll_interval: float = 0.2,
    checkpoint_every: float = 30.0,
    idle_exit: float | None = None,
) -> HuntResult:
    """Follow the inputs; ``on_alert(alert, created)`` for every new or grown alert.

    Stops on SIGINT/SIGTERM (or after ``idle_exit`` seconds without new lines); the engine
    state and the follower position are checkpointed together every ``checkpoint_every``
    seconds and at exit, so a restart resumes where it stopped without replaying lines.
    """
    from rempart.ingest.service import FollowedSource

    started = time.perf_counter()
    engine = make_engine(specs, lateness, state_url)
    store = _store(state_url) if state_url else None
    saved = store.load() if store else None
    source = FollowedSource(request, (saved or {}).get("follower"))
    result = HuntResult(care_note=add_care_history(request, (engine,)))
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    last_data = last_save = time.monotonic()

    def save() -> None:
        if store is not None:
            state = engine.dump_state()
            state["follower"] = source.checkpoint()
            result.state_bytes = store.save(state)

    try:
        while not stop.requested:
            events = source.poll()
            if events is not None:
                for ev in events:
                    for alert in engine.process(ev):
                        result.alerts.append(alert)
                        on_alert(alert, True)
                for alert in engine.take_updated():
                    on_alert(alert, False)
            now = time.monotonic()
            if events is not None:
                last_data = now
            if now - last_save >= checkpoint_every:
                save()
                last_save = now
            if idle_exit is not None and now - last_data >= idle_exit:
                break
            if events is None:
                time.sleep(poll_interval)
    finally:
        for alert in engine.flush():
            result.alerts.append(alert)
            on_alert(alert, True)
        save()
        source.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    result.events = engine.events_seen
    result.late_events = engine.late_events
    result.quarantined_by_reason = dict(source.quarantine.counts)
    path = source.quarantine.path
    result.quarantine_file = str(path) if path else None
    result.lines = source.lines
    result.seconds = time.perf_counter() - started
    return result
