"""Message formats: generic JSON, Slack/Mattermost, Microsoft Teams, e-mail, syslog RFC 5424, CEF.

Messages carry what an on-call analyst needs (what, who, how many records, what was done) and
never a raw beneficiary identifier: alerts hold none.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from rempart import __version__
from rempart.alerts import Alert
from rempart.respond.decisions import Decision

_CEF_SEVERITY = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
_SYSLOG_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def summary(alert: Alert, decisions: list[Decision]) -> str:
    line = f"[{alert.severity.value.upper()}] {alert.title or alert.rule_id} — {alert.entity}"
    if alert.records_exposed:
        line += f" — {alert.records_exposed} records exposed"
    if decisions:
        done = ", ".join(
            f"{d.type.value} {d.scope.value} {d.value} ({d.state.value})" for d in decisions
        )
        line += f" — response: {done}"
    return line


def generic(alert: Alert, decisions: list[Decision]) -> dict[str, Any]:
    return {
        "source": "rempart",
        "version": __version__,
        "summary": summary(alert, decisions),
        "alert": alert.to_dict(),
        "decisions": [d.to_dict() for d in decisions],
    }


def slack(alert: Alert, decisions: list[Decision]) -> dict[str, Any]:
    """Slack and Mattermost incoming webhooks (both accept ``text`` + ``attachments``)."""
    color = {"critical": "#8b0000", "high": "#d00000", "medium": "#e69500"}.get(
        alert.severity.value, "#439fe0"
    )
    fields = [
        {"title": "Rule", "value": alert.rule_id, "short": True},
        {"title": "Entity", "value": f"{alert.entity_type.value} {alert.entity}", "short": True},
        {"title": "Records exposed", "value": str(alert.records_exposed), "short": True},
        {"title": "IPs", "value": ", ".join(alert.ips[:5]) or "-", "short": True},
    ]
    for d in decisions:
        fields.append(
            {
                "title": f"Decision {d.id}",
                "value": f"{d.type.value} {d.scope.value} "
                f"{d.value} until {_iso(d.expires)} ({d.state.value})",
                "short": False,
            }
        )
    return {
        "text": summary(alert, decisions),
        "attachments": [
            {"color": color, "title": alert.title, "text": alert.explanation, "fields": fields}
        ],
    }


def teams(alert: Alert, decisions: list[Decision]) -> dict[str, Any]:
    """Microsoft Teams (workflow / incoming webhook) message with an Adaptive Card."""
    facts = [
        {"title": "Rule", "value": alert.rule_id},
        {"title": "Severity", "value": alert.severity.value},
        {"title": "Entity", "value": f"{alert.entity_type.value} {alert.entity}"},
        {"title": "Records exposed", "value": str(alert.records_exposed)},
    ]
    facts += [
        {"title": f"Decision {d.id}", "value": f"{d.type.value} {d.scope.value} {d.value}"}
        for d in decisions
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "size": "Medium",
                "weight": "Bolder",
                "wrap": True,
                "text": summary(alert, decisions),
            },
            {"type": "TextBlock", "wrap": True, "text": alert.explanation or alert.title},
            {"type": "FactSet", "facts": facts},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def email(
    alert: Alert, decisions: list[Decision], sender: str, recipients: list[str]
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Rempart] {summary(alert, decisions)}"[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    lines = [
        summary(alert, decisions),
        "",
        alert.explanation,
        "",
        f"Rule: {alert.rule_id} (v{alert.rule_version})",
        f"Entity: {alert.entity_type.value} {alert.entity}",
        f"Accounts: {', '.join(alert.accounts) or '-'}",
        *(
            [f"Accounts tried (targets): {len(alert.targets)}: {', '.join(alert.targets[:20])}"]
            if alert.targets
            else []
        ),
        f"IPs: {', '.join(alert.ips) or '-'}",
        f"First seen: {_iso(alert.first_seen)}  detected: {_iso(alert.detected_at)}",
        f"Records exposed so far: {alert.records_exposed}",
        f"Alert id: {alert.id}",
        "",
    ]
    for d in decisions:
        lines.append(
            f"Decision {d.id}: {d.type.value} {d.scope.value} {d.value} "
            f"until {_iso(d.expires)} [{d.state.value}] — {d.reason}"
        )
    msg.set_content("\n".join(lines))
    return msg


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(alert: Alert, decisions: list[Decision], facility: int) -> bytes:
    pri = facility * 8 + _SYSLOG_SEVERITY[alert.severity.value]
    host = socket.gethostname() or "-"
    params = {
        "alert": alert.id,
        "rule": alert.rule_id,
        "severity": alert.severity.value,
        "entityType": alert.entity_type.value,
        "entity": alert.entity,
        "records": str(alert.records_exposed),
        "decisions": ",".join(
            f"{d.id}:{d.type.value}:{d.scope.value}:{d.value}" for d in decisions
        ),
    }
    sd = "[rempart@32473 " + " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
    msg = summary(alert, decisions)
    line = f"<{pri}>1 {_iso(alert.detected_at)} {host} rempart - ALERT {sd} \ufeff{msg}"
    return line.encode("utf-8")


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _cef_ext(value: str) -> str:
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def cef(alert: Alert, decisions: list[Decision], facility: int) -> bytes:
    """ArcSight CEF:0 inside an RFC 5424 syslog envelope."""
    sev = _CEF_SEVERITY[alert.severity.value]
    ext = {
        "rt": str(int(alert.detected_at * 1000)),
        "suser": alert.accounts[0] if alert.accounts else "",
        "src": alert.ips[0] if alert.ips else "",
        "cnt": str(alert.records_exposed),
        "externalId": alert.id,
        "act": ",".join(f"{d.type.value}:{d.scope.value}:{d.value}" for d in decisions) or "none",
        "msg": summary(alert, decisions),
        "cs1Label": "entity",
        "cs1": f"{alert.entity_type.value}:{alert.entity}",
    }
    body = "CEF:0|Rempart|Rempart|{}|{}|{}|{}|{}".format(
        _cef_header(__version__),
        _cef_header(alert.rule_id),
        _cef_header(alert.title or alert.rule_id),
        sev,
        " ".join(f"{k}={_cef_ext(v)}" for k, v in ext.items() if v),
    )
    pri = facility * 8 + _SYSLOG_SEVERITY[alert.severity.value]
    host = socket.gethostname() or "-"
    return f"<{pri}>1 {_iso(alert.detected_at)} {host} rempart - ALERT - {body}".encode()
