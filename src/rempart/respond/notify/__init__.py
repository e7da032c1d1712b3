"""Notifications: a bounded background queue, retries with exponential backoff, dead letters.

``Notifier.submit_alert`` never blocks and never raises: detection goes on whatever the SMTP
server or the webhook does. Each delivery is tried ``attempts`` times (waits of
``backoff_seconds`` x 2^n between tries, retries scheduled without holding up other deliveries);
a delivery that still fails, or that finds the queue full, is written to the dead-letter file
(one JSON object a line) with the reason. Destinations come only from the operator's
configuration.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rempart.alerts import Alert, Severity
from rempart.respond.decisions import Decision
from rempart.respond.notify import formats
from rempart.respond.settings import (
    Channel,
    EmailChannel,
    NotificationSettings,
    SyslogChannel,
    WebhookChannel,
)

if False:  # pragma: no cover - typing only, avoids an import cycle at runtime
    from rempart.respond.metrics import ServiceMetrics


log = logging.getLogger("rempart.respond.notify")


class DeliveryError(Exception):
    """A delivery attempt failed (message names the cause, never a secret)."""


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    channel: str = field(compare=False)
    alert: Alert = field(compare=False)
    decisions: list[Decision] = field(compare=False)
    attempt: int = field(default=0, compare=False)
    last_error: str = field(default="", compare=False)


def send_webhook(ch: WebhookChannel, alert: Alert, decisions: list[Decision]) -> None:
    build = {
        "generic": formats.generic,
        "slack": formats.slack,
        "mattermost": formats.slack,
        "teams": formats.teams,
    }[ch.format]
    headers = {"User-Agent": "rempart-notifier"}
    if ch.token_env and os.environ.get(ch.token_env):
        headers["Authorization"] = f"Bearer {os.environ[ch.token_env]}"
    try:
        resp = httpx.post(
            str(ch.url),
            json=build(alert, decisions),
            headers=headers,
            timeout=5.0,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook: {exc.__class__.__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise DeliveryError(f"webhook answered HTTP {resp.status_code}")


def send_email(ch: EmailChannel, alert: Alert, decisions: list[Decision]) -> None:
    msg = formats.email(alert, decisions, ch.sender, ch.recipients)
    try:
        with smtplib.SMTP(ch.host, ch.port, timeout=10) as smtp:
            if ch.starttls:
                smtp.starttls()
            if ch.username:
                password = os.environ.get(ch.password_env or "", "")
                smtp.login(ch.username, password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"smtp: {exc.__class__.__name__}") from None


def send_syslog(ch: SyslogChannel, alert: Alert, decisions: list[Decision]) -> None:
    build = formats.cef if ch.format == "cef" else formats.rfc5424
    payload = build(alert, decisions, ch.facility)
    try:
        if ch.protocol == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload, (ch.host, ch.port))
        else:
            with socket.create_connection((ch.host, ch.port), timeout=5) as sock:
                sock.sendall(str(len(payload)).encode() + b" " + payload)  # RFC 6587 framing
    except OSError as exc:
        raise DeliveryError(f"syslog: {exc.__class__.__name__}") from None


def deliver(ch: Channel, alert: Alert, decisions: list[Decision]) -> None:
    if isinstance(ch, WebhookChannel):
        send_webhook(ch, alert, decisions)
    elif isinstance(ch, EmailChannel):
        send_email(ch, alert, decisions)
    else:
        send_syslog(ch, alert, decisions)


class Notifier:
    def __init__(
        self,
        settings: NotificationSettings,
        *,
        metrics: ServiceMetrics | None = None,
        sender: Callable[[Channel, Alert, list[Decision]], None] = deliver,
        sleep_scale: float = 1.0,
    ):
        self.settings = settings
        self.channels = dict(settings.channels)
        self.metrics = metrics
        self._send = sender
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.delivered = 0
        self.dead = 0
        self._scale = sleep_scale

    @property
    def pending(self) -> int:
        return len(self._heap)

    def start(self) -> None:
        if self.channels and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rempart-notify", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop; what could not be delivered in ``timeout`` goes to the dead-letter file."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left, self._heap = self._heap, []
        for job in left:
            self._dead_letter(job, job.last_error or "not delivered before shutdown")

    def submit_alert(self, alert: Alert, decisions: list[Decision], channels: list[str]) -> None:
        """Queue one delivery per channel whose minimum severity the alert reaches."""
        for name in channels:
            ch = self.channels.get(name)
            if ch is None or alert.severity.rank < Severity(ch.min_severity).rank:
                continue
            job = _Job(time.monotonic(), next(self._seq), name, alert, list(decisions))
            with self._cond:
                if len(self._heap) >= self.settings.queue_size or self._stopping:
                    full = True
                else:
                    full = False
                    heapq.heappush(self._heap, job)
                    self._cond.notify()
            if full:
                self._dead_letter(job, "notification queue full")

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping and not self._heap:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0].due <= now:
                        job = heapq.heappop(self._heap)
                        break
                    if self._stopping:
                        # shutting down: do not wait for backoffs
                        job = heapq.heappop(self._heap)
                        break
                    wait = self._heap[0].due - now if self._heap else None
                    self._cond.wait(wait)
            self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        ch = self.channels[job.channel]
        job.attempt += 1
        try:
            self._send(ch, job.alert, job.decisions)
        except DeliveryError as exc:
            job.last_error = str(exc)
        except Exception as exc:
            job.last_error = f"{exc.__class__.__name__}"
        else:
            self.delivered += 1
            self._count(job.channel, "delivered")
            return
        if job.attempt >= self.settings.attempts or self._stopping:
            self._dead_letter(job, job.last_error)
            return
        delay = self.settings.backoff_seconds * (2 ** (job.attempt - 1)) * self._scale
        job.due = time.monotonic() + delay
        self._count(job.channel, "retried")
        with self._cond:
            heapq.heappush(self._heap, job)
            self._cond.notify()

    def _count(self, channel: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(channel, result).inc()

    def _dead_letter(self, job: _Job, reason: str) -> None:
        self.dead += 1
        log.warning(
            "notification to %s given up after %d attempt(s): %s", job.channel, job.attempt, reason
        )
        self._count(job.channel, "dead_letter")
        record: dict[str, Any] = {
            "at": time.time(),
            "channel": job.channel,
            "attempts": job.attempt,
            "reason": reason,
            "alert": job.alert.to_dict(),
            "decisions": [d.to_dict() for d in job.decisions],
        }
        path = Path(self.settings.dead_letter_file).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError:
            pass  # nowhere left to write: the metric still counts it
