"""Prometheus metrics of the response service (one registry per service instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.ingested = Counter(
            "rempart_events_accepted", "Events accepted for detection", registry=r
        )
        self.rejected = Counter(
            "rempart_lines_rejected", "Malformed lines set aside in quarantine", registry=r
        )
        self.refused = Counter(
            "rempart_ingest_refused", "Ingest requests refused with 429 (queue full)", registry=r
        )
        self.processed = Counter(
            "rempart_events_processed", "Events processed by the engine", registry=r
        )
        self.queue_depth = Gauge(
            "rempart_queue_events", "Events waiting for the engine", registry=r
        )
        self.worker_errors = Counter(
            "rempart_engine_errors", "Batches the engine worker failed on", registry=r
        )
        self.alerts = Counter("rempart_alerts", "Alerts raised", ["rule", "severity"], registry=r)
        self.decisions = Counter(
            "rempart_decisions", "Decisions made", ["type", "scope", "state"], registry=r
        )
        self.checks = Counter(
            "rempart_decision_checks", "Enforcement checks by answer", ["status"], registry=r
        )
        self.decision_latency = Histogram(
            "rempart_ingest_to_decision_seconds",
            "Wall time from a batch accepted to the decision it caused being enforceable",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.notifications = Counter(
            "rempart_notifications", "Notification deliveries", ["channel", "result"], registry=r
        )
