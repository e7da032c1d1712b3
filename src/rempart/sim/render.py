"""Simulated requests and their two renderings: the nginx access log and ECS JSON lines.

Internally a request is a plain tuple (creating millions of them must be cheap); the field
positions are the constants below and ``SimRequest`` gives them names for the public streaming
API. Times are integer milliseconds since the Unix epoch (UTC); rendering in Europe/Paris is
cached per second, so a 10-million-line log formats at most one date per distinct second.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

(TS, IP, USER, METHOD, PATH, QUERY, STATUS, BYTES, REFERER, UA, RT, SID, ORG, ACTION, TAG, NIR) = (
    range(16)
)

Req = tuple[int, str, str, str, str, str, int, int, str, str, str, str, str, str, int, str]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SimRequest(NamedTuple):
    """One simulated request, as the streaming API yields it (``-``/``""`` mean absent)."""

    ts_ms: int
    source_ip: str
    user_name: str  # "-" on anonymous requests
    method: str
    path: str
    query: str  # "" when none
    status: int
    bytes: int
    referer: str  # "-" when none
    user_agent: str
    request_time: str
    session_id: str  # "-" when no session cookie
    organization_id: str  # "" when the account is unknown or anonymous
    action: str  # the profile's action (event.action) for this request
    attack: int  # 0 for legitimate traffic, else 1-based index into truth["attacks"]
    nir: str  # beneficiary id of a rights check, else ""

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC).astimezone(PARIS)


_MS3 = tuple(f"{i:03d}" for i in range(1000))


def _hms_table() -> tuple[str, ...]:
    return tuple(
        f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60)
    )


class Renderer:
    """Formats requests as nginx and ECS lines.

    No datetime per line: the Europe/Paris offset is cached per UTC hour (offsets only change
    on the hour), date strings per local day, and ``HH:MM:SS`` comes from a table of the 86,400
    seconds of a day.
    """

    _HMS: tuple[str, ...] = ()

    def __init__(self) -> None:
        if not Renderer._HMS:
            Renderer._HMS = _hms_table()
        self._hours: dict[int, tuple[int, str, str]] = {}
        self._days: dict[int, tuple[str, str]] = {}
        self._ua_json: dict[str, str] = {}
        self._frags: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def _hour(self, hour: int) -> tuple[int, str, str]:
        dt = datetime.fromtimestamp(hour * 3600, tz=PARIS)
        off = dt.strftime("%z")  # +0100
        seconds = int(dt.utcoffset().total_seconds())  # type: ignore[union-attr]
        value = self._hours[hour] = (seconds, off, f"{off[:3]}:{off[3:]}")
        return value

    def _day(self, local_day: int) -> tuple[str, str]:
        d = datetime.fromtimestamp(local_day * 86400, tz=UTC)
        value = self._days[local_day] = (
            f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}",
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        )
        return value

    def time_local(self, ts_ms: int) -> str:
        """nginx ``$time_local``, e.g. ``29/Nov/2026:09:03:22 +0100``."""
        second = ts_ms // 1000
        hour = self._hours.get(second // 3600) or self._hour(second // 3600)
        local = second + hour[0]
        day = self._days.get(local // 86400) or self._day(local // 86400)
        return f"{day[0]}:{self._HMS[local % 86400]} {hour[1]}"

    def iso(self, ts_ms: int) -> str:
        """ISO 8601 local time with offset and milliseconds (ECS ``@timestamp``)."""
        second = ts_ms // 1000
        hour = self._hours.get(second // 3600) or self._hour(second // 3600)
        local = second + hour[0]
        day = self._days.get(local // 86400) or self._day(local // 86400)
        return f"{day[1]}T{self._HMS[local % 86400]}.{ts_ms % 1000:03d}{hour[2]}"

    def _stamp(self, second: int) -> tuple[str, str]:
        """(nginx ``$time_local``, ISO date-time without fraction and offset) of a second."""
        hour = self._hours.get(second // 3600) or self._hour(second // 3600)
        local = second + hour[0]
        day = self._days.get(local // 86400) or self._day(local // 86400)
        hms = self._HMS[local % 86400]
        return f"{day[0]}:{hms} {hour[1]}", f"{day[1]}T{hms}"

    def nginx(self, reqs: list[Req]) -> str:
        """The ``rempart`` nginx log_format (combined + request_time + cookie sid)."""
        out: list[str] = []
        append = out.append
        last, stamp = -1, ""
        for ts, ip, user, method, path, q, status, size, ref, ua, rt, sid, _o, _a, _t, _n in reqs:
            if ts // 1000 != last:
                last = ts // 1000
                stamp = self._stamp(last)[0]
            append(
                f'{ip} - {user} [{stamp}] "{method} {path}{"?" + q if q else ""} HTTP/1.1" '
                f'{status} {size} "{ref}" "{ua}" "{rt}" "{sid}"\n'
            )
        return "".join(out)

    def ecs(self, reqs: list[Req]) -> str:
        """ECS JSON lines with flat dotted field names, one object per request."""
        out: list[str] = []
        append = out.append
        ua_json = self._ua_json
        ms3 = _MS3
        last, iso, offset = -1, "", ""
        for ts, ip, user, method, path, q, status, size, _r, ua, _t, sid, org, _a, _g, _n in reqs:
            if ts // 1000 != last:
                last = ts // 1000
                iso = self._stamp(last)[1]
                offset = self._hours[last // 3600][2]
            ua_part = ua_json.get(ua)
            if ua_part is None:
                ua_part = ua_json[ua] = json.dumps(ua, ensure_ascii=False)
            user_part = "" if user == "-" else f'"user.name":"{user}",'
            org_part = f'"organization.id":"{org}",' if org else ""
            q_part = f'"url.query":"{q}",' if q else ""
            sid_part = "" if sid == "-" else f',"session.id":"{sid}"'
            append(
                f'{{"@timestamp":"{iso}.{ms3[ts % 1000]}{offset}",'
                f'"source.ip":"{ip}",{user_part}{org_part}"user_agent.original":{ua_part},'
                f'"http.request.method":"{method}","url.path":"{path}",{q_part}'
                f'"http.response.status_code":{status},"http.response.body.bytes":{size}'
                f"{sid_part}}}\n"
            )
        return "".join(out)

    def both(self, reqs: list[Req]) -> tuple[str, str]:
        """``(nginx(reqs), ecs(reqs))`` in one pass, caching each client's JSON fragment."""
        n_out: list[str] = []
        e_out: list[str] = []
        n_add, e_add = n_out.append, e_out.append
        ua_json, ms3, frags = self._ua_json, _MS3, self._frags
        last, stamp, iso, offset = -1, "", "", ""
        for ts, ip, user, method, path, q, status, size, ref, ua, rt, sid, org, _a, _t, _n in reqs:
            if ts // 1000 != last:
                last = ts // 1000
                stamp, iso = self._stamp(last)
                offset = self._hours[last // 3600][2]
            target = path + "?" + q if q else path
            n_add(
                f'{ip} - {user} [{stamp}] "{method} {target} HTTP/1.1" '
                f'{status} {size} "{ref}" "{ua}" "{rt}" "{sid}"\n'
            )
            key = (ip, user, ua, sid)
            frag = frags.get(key)
            if frag is None:
                ua_part = ua_json.get(ua)
                if ua_part is None:
                    ua_part = ua_json[ua] = json.dumps(ua, ensure_ascii=False)
                if len(frags) > 200_000:
                    frags.clear()
                frag = frags[key] = (
                    f'"source.ip":"{ip}",'
                    + ("" if user == "-" else f'"user.name":"{user}",')
                    + (f'"organization.id":"{org}",' if org else "")
                    + f'"user_agent.original":{ua_part},',
                    "" if sid == "-" else f',"session.id":"{sid}"',
                )
            q_part = f'"url.query":"{q}",' if q else ""
            e_add(
                f'{{"@timestamp":"{iso}.{ms3[ts % 1000]}{offset}",{frag[0]}'
                f'"http.request.method":"{method}","url.path":"{path}",{q_part}'
                f'"http.response.status_code":{status},"http.response.body.bytes":{size}'
                f"{frag[1]}}}\n"
            )
        return "".join(n_out), "".join(e_out)
