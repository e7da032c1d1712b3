from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from respond_helpers import make_alert
from tests.ports import reserve_port

from rempart.alerts import Severity
from rempart.respond.decisions import Decision, DecisionType, Scope, new_decision_id
from rempart.respond.notify import Notifier
from rempart.respond.settings import NotificationSettings


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    """A real SMTP server (aiosmtpd's protocol on an asyncio loop in a thread) listening on a
    reserved loopback socket: its port, never free for another process to take meanwhile."""
    sock = reserve_port()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(lambda: SMTP(handler), sock=sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def block() -> Decision:
    return Decision(
        new_decision_id(),
        Scope.ACCOUNT,
        "PH0042",
        DecisionType.BLOCK,
        1.0,
        3601.0,
        "harvest",
        "rule:TP-HARV-001",
    )


class Hook:
    """A real HTTP server on loopback that fails the first ``failures`` requests."""

    def __init__(self, failures: int = 0):
        self.received: list[dict] = []
        self.failures = failures
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.failures > 0:
                    hook.failures -= 1
                    self.send_response(503)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def settings(tmp_path: Path, **channels) -> NotificationSettings:
    return NotificationSettings(
        channels=channels,
        attempts=3,
        backoff_seconds=0.05,
        dead_letter_file=tmp_path / "dead.jsonl",
    )


@pytest.mark.parametrize("fmt", ["generic", "slack", "teams"])
def test_webhook_is_retried_with_backoff_then_delivered(tmp_path: Path, fmt: str) -> None:
    hook = Hook(failures=2)
    n = Notifier(settings(tmp_path, soc={"kind": "webhook", "url": hook.url, "format": fmt}))
    n.start()
    n.submit_alert(make_alert("TP-HARV-001", severity=Severity.CRITICAL), [block()], ["soc"])
    assert wait_for(lambda: hook.received)
    n.stop()
    hook.close()
    body = hook.received[0]
    text = json.dumps(body)
    assert "PH0042" in text and "block" in text
    if fmt == "generic":
        assert body["alert"]["rule"] == "TP-HARV-001" and body["decisions"][0]["type"] == "block"
    elif fmt == "slack":
        assert body["text"].startswith("[CRITICAL]") and body["attachments"][0]["fields"]
    else:
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert n.delivered == 1 and n.dead == 0


def test_persistent_failure_goes_to_the_dead_letter_file_without_blocking(tmp_path: Path) -> None:
    closed = reserve_port()  # bound, not listening: connections are refused
    port = closed.getsockname()[1]
    n = Notifier(settings(tmp_path, soc={"kind": "webhook", "url": f"http://127.0.0.1:{port}/"}))
    n.start()
    started = time.monotonic()
    for i in range(3):
        n.submit_alert(make_alert(entity=f"PH{i}"), [], ["soc"])
    assert time.monotonic() - started < 0.5  # submitting never waits for delivery
    assert wait_for(lambda: n.dead == 3)
    n.stop()
    closed.close()
    records = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["attempts"] == 3 for r in records)
    assert "webhook" in records[0]["reason"] and records[0]["alert"]["entity"] == "PH0"


def test_alerts_below_a_channels_minimum_severity_are_not_sent(tmp_path: Path) -> None:
    hook = Hook()
    n = Notifier(
        settings(tmp_path, soc={"kind": "webhook", "url": hook.url, "min_severity": "high"})
    )
    n.start()
    n.submit_alert(make_alert(severity=Severity.MEDIUM), [], ["soc"])
    n.submit_alert(make_alert(severity=Severity.HIGH, entity="PH9"), [], ["soc"])
    assert wait_for(lambda: len(hook.received) == 1)
    n.stop()
    hook.close()
    assert hook.received[0]["alert"]["entity"] == "PH9"


def test_email_is_delivered_to_a_real_smtp_server(tmp_path: Path) -> None:
    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with smtp_server(Handler()) as port:
        n = Notifier(
            settings(
                tmp_path,
                dpo={
                    "kind": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "sender": "rempart@example.fr",
                    "recipients": ["dpo@example.fr", "soc@example.fr"],
                },
            )
        )
        n.start()
        n.submit_alert(make_alert("TP-HARV-001", records_exposed=412), [block()], ["dpo"])
        assert wait_for(lambda: received)
        n.stop()
    env = received[0]
    assert env.rcpt_tos == ["dpo@example.fr", "soc@example.fr"]
    text = env.content.decode()
    assert "Subject: [Rempart] [HIGH]" in text and "412 records exposed" in text
    assert "Decision d-" in text


@pytest.mark.parametrize("fmt", ["rfc5424", "cef"])
def test_syslog_messages_reach_a_real_udp_receiver(tmp_path: Path, fmt: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    n = Notifier(
        settings(
            tmp_path,
            siem={
                "kind": "syslog",
                "host": "127.0.0.1",
                "port": port,
                "format": fmt,
                "facility": 16,
            },
        )
    )
    n.start()
    n.submit_alert(make_alert("TP-HARV-001", severity=Severity.CRITICAL), [block()], ["siem"])
    data, _ = sock.recvfrom(65535)
    n.stop()
    sock.close()
    text = data.decode()
    assert text.startswith("<130>1 ")  # local0 (16*8) + critical (2)
    if fmt == "rfc5424":
        assert '[rempart@32473 alert="al-' in text and 'rule="TP-HARV-001"' in text
    else:
        assert "CEF:0|Rempart|Rempart|" in text and "|TP-HARV-001|" in text
        assert "suser=PH0042" in text and "act=block:account:PH0042" in text


def test_syslog_over_tcp_uses_octet_counting(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    n = Notifier(
        settings(
            tmp_path, siem={"kind": "syslog", "host": "127.0.0.1", "port": port, "protocol": "tcp"}
        )
    )
    n.start()
    n.submit_alert(make_alert(), [block()], ["siem"])
    conn, _ = server.accept()
    conn.settimeout(5)
    data = b""
    while chunk := conn.recv(65535):  # the notifier closes the connection after one message
        data += chunk
    n.stop()
    conn.close()
    server.close()
    length, _, message = data.partition(b" ")
    assert int(length) == len(message) and message.startswith(b"<")
