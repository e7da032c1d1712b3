"""The response service: the streaming engine, the policy and the decision store in one process.

Sources (followed files, HTTP ingest) -> bounded queue -> one worker thread running
``engine.process(event)`` -> alerts -> policy -> decisions (durable, then in the in-memory index
the checks read) and notifications (a background queue: never blocks detection).

The HTTP server (:mod:`rempart.respond.server`) is a thin shell over this class; tests and the
demo use it directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from rempart.alerts import Alert
from rempart.config import Config
from rempart.db import Base, open_database
from rempart.errors import RempartError
from rempart.events import Event
from rempart.respond.apitokens import ApiTokens
from rempart.respond.decisions import (
    CheckRequest,
    Clock,
    Decision,
    DecisionState,
    DecisionType,
    Rate,
    Scope,
    new_decision_id,
    normalise_value,
)
from rempart.respond.enforce import Enforcer, Verdict
from rempart.respond.intake import BoundedEventQueue, FileFollower, QueuedBatch
from rempart.respond.metrics import ServiceMetrics
from rempart.respond.notify import Notifier
from rempart.respond.policy import PolicyEngine
from rempart.respond.policy_spec import load_policy

log = logging.getLogger("rempart.respond")


class DetectionEngine(Protocol):
    def process(self, event: Event) -> list[Alert]: ...


class FollowCheckpointRow(Base):
    __tablename__ = "respond_follow_checkpoint"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class Saturated(RempartError):
    """The engine's queue is full: retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"engine saturated, retry in {retry_after} s")
        self.retry_after = retry_after


class TooManyEvents(RempartError):
    """One request holds more events than the whole queue: split it (HTTP 413)."""


@dataclass(slots=True, frozen=True)
class IngestReceipt:
    accepted: int
    rejected: int
    queued: int


def default_engine(config: Config) -> DetectionEngine:
    """The detection engine for the configured profile's rule pack (plus extra rules).

    Live enforcement runs the engine with no lateness buffer: each event is evaluated as soon as
    it arrives (an out-of-order event is still counted, in arrival order); waiting
    ``detection.lateness_seconds`` of event time would delay every block by as much.
    """
    from rempart.detect.engine import Engine
    from rempart.detect.loader import load_pack

    det = config.detection
    specs = load_pack(config.profile, det.rules, det.disabled)
    return Engine(specs, lateness=0.0)


class ResponseService:
    def __init__(
        self,
        config: Config,
        *,
        engine: DetectionEngine | None = None,
        clock: Clock = time.time,
        sessions: sessionmaker[Session] | None = None,
        tokenizer: Any = None,
        follow_from: str = "start",
    ):
        from rempart.ingest import LineDecoder, Quarantine, make_normalizer
        from rempart.ingest.normalise import load_directory
        from rempart.protect.tokens import Tokenizer, resolve_key
        from rempart.respond.store import DecisionStore

        self.config = config
        settings = config.response
        self.settings = settings
        self.clock = clock
        if sessions is None:
            _, sessions = open_database(config.state.url)
        self.sessions = sessions
        self.store = DecisionStore(sessions, clock)
        self.tokens = ApiTokens(sessions)
        self.metrics = ServiceMetrics()
        self.notifier = Notifier(settings.notifications, metrics=self.metrics)
        self.policy = PolicyEngine(
            load_policy(settings.policy),
            self.store,
            settings,
            channels=list(settings.notifications.channels),
        )
        self.enforcer = Enforcer(self.store.index, clock)
        directory = load_directory(config.directory) if config.directory else None
        if directory:
            for account, entry in directory.items():
                if entry.organization_id:
                    self.store.index.organization_of[account] = entry.organization_id
        if tokenizer is None:
            key = resolve_key(env=config.keys.token_key_env, file=config.keys.token_key_file)
            tokenizer = Tokenizer(key)
        normalizer = make_normalizer(config.profile, tokenizer, directory)
        self.quarantine = Quarantine(config.state.quarantine_dir, redact=normalizer.redact_bytes)
        mapping = config.json_mapping
        self._decoder = LineDecoder(
            normalizer,
            self.quarantine,
            json_mapping=mapping.fields if mapping else None,
            time_format=mapping.time_format if mapping else "iso8601",
        )
        self._decode_lock = threading.Lock()
        self.engine = engine if engine is not None else default_engine(config)
        self._state_store: Any = None
        if hasattr(self.engine, "dump_state") and hasattr(self.engine, "load_state"):
            from rempart.detect.store import StateStore

            self._state_store = StateStore(config.state.url, name="rempart-serve")
            saved = self._state_store.load()
            if saved is not None:
                self.engine.load_state(saved)
        #: What the care history loaded (None without one): docs/care-history.md.
        self.care_note: str | None = None
        if config.care_history and engine is None:
            from rempart.detect.engine import Engine
            from rempart.ingest.care import configured_care_history

            assert isinstance(self.engine, Engine)  # (default_engine's)
            care = configured_care_history(config, tokenizer)
            assert care is not None
            self.engine.add_care_history(care.accounts)
            self.care_note = care.note()
            log.info("%s", self.care_note)
        self._follow_cp: dict[str, Any] | None = None
        self._last_checkpoint = time.monotonic()
        self.queue = BoundedEventQueue(settings.server.queue_events)
        self.alerts: OrderedDict[str, Alert] = OrderedDict()
        self._alerts_lock = threading.Lock()
        self.on_alert: list[Callable[[Alert], None]] = []
        self.on_decision: list[Callable[[Decision], None]] = []
        self.decision_latencies: deque[float] = deque(maxlen=10_000)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._http_lines = 0
        self._processed = 0
        self._drain_rate = 10_000.0
        self.followers: list[FileFollower] = []
        self._follow_from = follow_from
        self.worker_error: str | None = None
        #: Seconds between two synchronisations of the decision index with the database.
        self.sync_interval = 2.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.notifier.start()
        self._worker = threading.Thread(target=self._run, name="rempart-engine", daemon=True)
        self._worker.start()
        self._maintenance = threading.Thread(
            target=self._maintain, name="rempart-maintenance", daemon=True
        )
        self._maintenance.start()
        follow = [Path(s.path).expanduser() for s in self.config.sources if s.follow]
        if follow:
            follower = FileFollower(
                follow,
                self._decode_chunk,
                self.queue,
                interval=self.settings.server.follow_interval_seconds,
                checkpoint=self._load_checkpoint(),
                save_checkpoint=self._note_follow_checkpoint,
                start_at="end" if self._follow_from == "end" else "start",
            )
            follower.start()
            self.followers.append(follower)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading, then process everything already accepted (nothing accepted is lost)."""
        for f in self.followers:
            f.stop()
        self.queue.close()
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self.checkpoint()
        if self._state_store is not None:
            self._state_store.close()
        self.notifier.stop()
        self.quarantine.flush()

    def _maintain(self) -> None:
        """Every few seconds: forget expired decisions, pick up changes made by the CLI."""
        while not self._stop.wait(self.sync_interval):
            try:
                self.store.sync()
                for d in self.store.sweep():
                    self.metrics.decisions.labels(d.type.value, d.scope.value, "expired").inc()
            except RempartError as exc:
                self.worker_error = f"decision sync: {exc}"

    def _note_follow_checkpoint(self, state: dict[str, Any]) -> None:
        self._follow_cp = state

    def checkpoint(self) -> None:
        """Save the engine's state, then the followed files' positions it covers."""
        self._last_checkpoint = time.monotonic()
        if self._state_store is not None:
            self._state_store.save(self.engine.dump_state())  # type: ignore[attr-defined]
        if self._follow_cp is not None:
            self._save_checkpoint(self._follow_cp)

    def _load_checkpoint(self) -> dict[str, Any] | None:
        with self.sessions() as session:
            row = session.get(FollowCheckpointRow, "follow")
            return dict(row.state) if row else None

    def _save_checkpoint(self, state: dict[str, Any]) -> None:
        with self.sessions.begin() as session:
            session.merge(FollowCheckpointRow(name="follow", state=state))

    # -- ingest ----------------------------------------------------------------------------
    def _decode_chunk(
        self, source: str, first_line: int, lines: list[bytes], complete: bool
    ) -> list[Event]:
        with self._decode_lock:
            before = self.quarantine.total
            fmt = self._decoder.detect_format(next((ln for ln in lines if ln.strip()), b""))
            events = self._decoder.decode(source, first_line, lines, fmt, complete=complete)
            self.metrics.rejected.inc(self.quarantine.total - before)
        return events

    def ingest_body(self, body: bytes, *, source: str = "http") -> IngestReceipt:
        """Decode NDJSON / log lines and queue them whole, or raise :class:`Saturated`."""
        lines = body.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        with self._decode_lock:
            first = self._http_lines + 1
            self._http_lines += len(lines)
        before = self.quarantine.total
        events = self._decode_chunk(source, first, lines, True)
        rejected = self.quarantine.total - before
        if len(events) > self.queue.capacity:
            raise TooManyEvents(
                f"{len(events)} events in one request, more than the queue holds "
                f"({self.queue.capacity}): send smaller requests"
            )
        if events and not self.queue.offer(QueuedBatch(events, time.time())):
            self.metrics.refused.inc()
            raise Saturated(self.queue.retry_after(self._drain_rate))
        self.metrics.ingested.inc(len(events))
        return IngestReceipt(len(events), rejected, self.queue.size)

    def ingest_events(self, events: list[Event], *, wait: bool = True) -> bool:
        """Queue already-normalised events (demo, benchmarks)."""
        batch = QueuedBatch(events, time.time())
        ok = self.queue.put(batch) if wait else self.queue.offer(batch)
        if ok:
            self.metrics.ingested.inc(len(events))
        return ok

    # -- the engine worker -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self.queue.get(0.05)
            self.metrics.queue_depth.set(self.queue.size)
            if batch is None:
                if self._stop.is_set():
                    return
                continue
            started = time.perf_counter()
            try:
                self._process(batch)
            except Exception as exc:
                self.worker_error = f"{exc.__class__.__name__}: {exc}"
                self.metrics.worker_errors.inc()
            spent = time.perf_counter() - started
            if spent > 0 and batch.events:
                self._drain_rate = 0.8 * self._drain_rate + 0.2 * (len(batch.events) / spent)
            if batch.done is not None:
                batch.done()
            if time.monotonic() - self._last_checkpoint > self.settings.server.checkpoint_seconds:
                try:
                    self.checkpoint()
                except RempartError as exc:
                    self.worker_error = f"checkpoint: {exc}"

    def _process(self, batch: QueuedBatch) -> None:
        process = self.engine.process
        observe = self.enforcer.observe
        for event in batch.events:
            alerts = process(event)
            observe(event)
            if alerts:
                for alert in alerts:
                    self.handle_alert(alert, accepted_at=batch.accepted_at)
        self._processed += len(batch.events)
        self.metrics.processed.inc(len(batch.events))

    def handle_alert(self, alert: Alert, *, accepted_at: float | None = None) -> list[Decision]:
        self._remember_alert(alert)
        outcome = self.policy.handle(alert)
        for extra in outcome.alerts:
            self._remember_alert(extra)
            self.notifier.submit_alert(extra, [], list(self.settings.notifications.channels))
        for note in outcome.notifications:
            self.notifier.submit_alert(note.alert, note.decisions, note.channels)
        now = time.time()
        for d in outcome.decisions:
            log.info(
                "decision %s: %s %s %s for %.0f s (%s) from %s",
                d.id,
                d.type.value,
                d.scope.value,
                d.value,
                d.duration,
                d.state.value,
                d.origin,
            )
            self.metrics.decisions.labels(d.type.value, d.scope.value, d.state.value).inc()
            if accepted_at is not None and d.state is DecisionState.ACTIVE:
                self.decision_latencies.append(now - accepted_at)
                self.metrics.decision_latency.observe(now - accepted_at)
            for callback in self.on_decision:
                callback(d)
        return outcome.decisions

    def _remember_alert(self, alert: Alert) -> None:
        new = alert.id not in self.alerts
        with self._alerts_lock:
            self.alerts[alert.id] = alert
            self.alerts.move_to_end(alert.id)
            while len(self.alerts) > self.settings.server.alerts_kept:
                self.alerts.popitem(last=False)
        if new:
            self.metrics.alerts.labels(alert.rule_id, alert.severity.value).inc()
            for callback in self.on_alert:
                callback(alert)

    # -- enforcement and management ---------------------------------------------------------
    def check(
        self, req: CheckRequest, method: str | None = None, purpose: str | None = None
    ) -> Verdict:
        verdict = self.enforcer.check(req, method, purpose)
        self.metrics.checks.labels(str(verdict.status)).inc()
        return verdict

    def add_manual_decision(
        self,
        *,
        scope: Scope,
        value: str,
        dtype: DecisionType,
        duration: float,
        reason: str,
        analyst: str,
        rate: str | None = None,
    ) -> Decision:
        now = self.clock()
        decision = Decision(
            id=new_decision_id(),
            scope=scope,
            value=normalise_value(scope, value),
            type=dtype,
            created=now,
            expires=now + duration,
            reason=reason,
            origin=f"analyst:{analyst}",
            rate=Rate.parse(rate) if rate else None,
        )
        if dtype is DecisionType.THROTTLE and decision.rate is None:
            from rempart.errors import InputError

            raise InputError("a throttle needs a rate, e.g. 30/min")
        return self.store.add(decision, actor=f"analyst:{analyst}")

    def recent_alerts(self, limit: int = 100) -> list[Alert]:
        with self._alerts_lock:
            items = list(self.alerts.values())
        return items[-limit:][::-1]

    def health(self) -> dict[str, Any]:
        worker_alive = self._worker is not None and self._worker.is_alive()
        return {
            "status": "ok" if worker_alive and not self.worker_error else "degraded",
            "engine_worker": worker_alive,
            "queue": {"events": self.queue.size, "capacity": self.queue.capacity},
            "processed": self._processed,
            "decisions_enforced": len(self.store.index),
            "worker_error": self.worker_error,
            "followers": [f.is_alive() for f in self.followers],
        }
