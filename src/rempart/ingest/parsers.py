"""Line parsers: nginx/Apache ``combined`` (with extra trailing fields) and JSON lines.

Parsers turn one decoded line into a :class:`RawRequest` or raise :class:`Reject` with a
machine-readable reason. They know nothing of routes or tokens (see ``normalise``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec


class Reject(Exception):
    """A line that cannot become an event; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


#: Every reason a line can be quarantined for.
REASONS = (
    "encoding",  # not valid UTF-8
    "binary",  # NUL or other control bytes
    "too_long",  # longer than the configured maximum
    "truncated",  # a prefix of a valid line (cut off)
    "bad_format",  # does not follow the log format
    "bad_timestamp",  # impossible or unparsable date
    "bad_field",  # a field of the wrong type (status not a number...)
    "json_invalid",  # not JSON
    "json_not_object",  # JSON, but not an object
    "missing_field",  # a required field is absent
)


@dataclass(slots=True)
class RawRequest:
    ts: float
    ip: str
    user: str | None
    method: str
    target: str
    status: int
    bytes: int
    user_agent: str | None
    session_id: str | None = None
    organization_id: str | None = None


_COMBINED = re.compile(
    r'(?P<ip>[^ ]+) [^ ]+ (?P<user>[^ ]+) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r"(?P<status>[0-9]{3}) (?P<bytes>[0-9]+|-)"
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?(?P<rest>.*)'
)
_LOOKS_LIKE_START = re.compile(r"[^ ]+ [^ ]+ [^ ]+ \[[0-9]{1,2}(?:/|$)")
_TRAILING = re.compile(r' *(?:"((?:[^"\\]|\\.)*)"|([^ "]+))')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


class ClfTimeParser:
    """Parses ``29/Nov/2026:09:03:22 +0100`` to epoch seconds, with a per-second cache."""

    __slots__ = ("_cache", "_minutes")

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}
        self._minutes: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        ts = self._cache.get(text)
        if ts is not None:
            return ts
        # One datetime per distinct minute (and offset); seconds are added.
        if (
            len(text) != 26
            or text[17] != ":"
            or not (text[18:20].isascii() and text[18:20].isdigit())
        ):
            raise Reject("bad_timestamp", text[:40])
        seconds = int(text[18:20])
        if seconds > 60:
            raise Reject("bad_timestamp", text[:40])
        ts = self.minute(text[:17] + text[20:]) + seconds
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[text] = ts
        return ts

    def minute(self, minute_key: str) -> float:
        """Epoch seconds of a time without its seconds (``29/Nov/2026:09:03 +0100``), cached;
        raises ``Reject`` as ``__call__`` does."""
        base = self._minutes.get(minute_key)
        if base is None:
            base = self._parse_minute(minute_key[:17] + ":00" + minute_key[17:])
            if len(self._minutes) > 100_000:
                self._minutes.clear()
            self._minutes[minute_key] = base
        return base

    @staticmethod
    def _parse_minute(text: str) -> float:
        try:
            if text[2] != "/" or text[6] != "/" or text[11] != ":" or text[14] != ":":
                raise ValueError(text)
            month = _MONTHS[text[3:6]]
            sign = 1 if text[21] == "+" else -1 if text[21] == "-" else 0
            if sign == 0 or text[20] != " ":
                raise ValueError(text)
            offset = sign * (int(text[22:24]) * 3600 + int(text[24:26]) * 60)
            dt = datetime(
                int(text[7:11]),
                month,
                int(text[0:2]),
                int(text[12:14]),
                int(text[15:17]),
                0,
                tzinfo=UTC,
            )
        except (ValueError, KeyError):
            raise Reject("bad_timestamp", text[:40]) from None
        return dt.timestamp() - offset


def _dash(value: str | None) -> str | None:
    return None if value is None or value == "-" or value == "" else value


class CombinedParser:
    """nginx/Apache combined format; extra trailing fields named by the profile."""

    def __init__(self, trailing_fields: tuple[str, ...] = ()):
        self.trailing_fields = trailing_fields
        self._time = ClfTimeParser()

    def parse(self, line: str) -> RawRequest:
        m = _COMBINED.fullmatch(line)
        if m is None:
            if _CONTROL.search(line):
                raise Reject("binary", "control characters")
            if _LOOKS_LIKE_START.match(line):
                raise Reject("truncated", f"starts like a log line, ends after {len(line)} chars")
            raise Reject("bad_format", "not the combined log format")
        ip, user, time_s, request, status_s, bytes_s, _ref, ua, rest = m.groups()
        ts = self._time(time_s)
        parts = request.split(" ")
        if len(parts) == 3 or len(parts) == 2:
            method, target = parts[0], parts[1]
        else:
            method, target = "-", request
        session_id = org = None
        if rest and self.trailing_fields:
            values = [q if q else b for q, b in _TRAILING.findall(rest)]
            for name, value in zip(self.trailing_fields, values, strict=False):
                if name == "session_id":
                    session_id = _dash(value)
                elif name == "organization_id":
                    org = _dash(value)
        return RawRequest(
            ts,
            ip,
            None if user == "-" else user,
            method,
            target,
            int(status_s),
            0 if bytes_s == "-" else int(bytes_s),
            _dash(ua),
            session_id,
            org,
        )


#: ECS field -> RawRequest attribute.
_ECS_TO_RAW = {
    "@timestamp": "ts",
    "source.ip": "ip",
    "user.name": "user",
    "http.request.method": "method",
    "url.path": "path",
    "url.query": "query",
    "url.original": "target",
    "http.response.status_code": "status",
    "http.response.body.bytes": "bytes",
    "user_agent.original": "user_agent",
    "session.id": "session_id",
    "organization.id": "organization_id",
}
REQUIRED_ECS = ("@timestamp", "source.ip", "url.path|url.original", "http.response.status_code")

_json = msgspec.json.Decoder()


def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    if dotted in obj:
        return obj[dotted]
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


class JsonParser:
    """JSON lines with ECS names (nested or dotted), or a custom field mapping."""

    def __init__(self, mapping: dict[str, str] | None = None, time_format: str = "iso8601"):
        self.paths = {ecs: (mapping or {}).get(ecs, ecs) for ecs in _ECS_TO_RAW}
        self.time_format = time_format

    def _time(self, value: Any) -> float:
        try:
            if self.time_format == "epoch":
                return float(value)
            if self.time_format == "epoch_ms":
                return float(value) / 1000.0
            if not isinstance(value, str):
                raise ValueError(value)
            if self.time_format == "iso8601":
                dt = datetime.fromisoformat(value)
            else:
                dt = datetime.strptime(value, self.time_format)
            if dt.tzinfo is None:
                raise Reject("bad_timestamp", "timestamp without a timezone")
            return dt.timestamp()
        except (ValueError, TypeError, OverflowError):
            raise Reject("bad_timestamp", str(value)[:40]) from None

    def parse(self, line: str) -> RawRequest:
        try:
            obj = _json.decode(line)
        except msgspec.DecodeError:
            if _CONTROL.search(line):
                raise Reject("binary", "control characters") from None
            stripped = line.rstrip()
            if stripped.startswith("{") and not stripped.endswith("}"):
                raise Reject("truncated", f"{len(line)} chars") from None
            raise Reject("json_invalid", "not JSON") from None
        if not isinstance(obj, dict):
            raise Reject("json_not_object", type(obj).__name__)
        p = self.paths
        ts_v = _lookup(obj, p["@timestamp"])
        ip = _lookup(obj, p["source.ip"])
        status = _lookup(obj, p["http.response.status_code"])
        path = _lookup(obj, p["url.path"])
        target = _lookup(obj, p["url.original"])
        if ts_v is None or ip is None or status is None or (path is None and target is None):
            missing = [
                name
                for name, v in (("@timestamp", ts_v), ("source.ip", ip), ("status", status))
                if v is None
            ] or ["url.path"]
            raise Reject("missing_field", ",".join(missing))
        if target is None:
            query = _lookup(obj, p["url.query"])
            target = f"{path}?{query}" if query else str(path)
        try:
            status_i = int(status)
            nbytes = int(_lookup(obj, p["http.response.body.bytes"]) or 0)
        except (TypeError, ValueError):
            raise Reject("bad_field", "status or bytes not a number") from None
        user = _lookup(obj, p["user.name"])
        ua = _lookup(obj, p["user_agent.original"])
        sid = _lookup(obj, p["session.id"])
        org = _lookup(obj, p["organization.id"])
        method = _lookup(obj, p["http.request.method"]) or "GET"
        return RawRequest(
            self._time(ts_v),
            str(ip),
            _dash(str(user)) if user is not None else None,
            str(method).upper(),
            str(target),
            status_i,
            nbytes,
            str(ua) if ua is not None else None,
            str(sid) if sid is not None else None,
            str(org) if org is not None else None,
        )
