"""The per-distinct-value loops of the columnar decode, compiled by mypyc.

``rempart.ingest.columnar`` dictionary-encodes a chunk's columns and runs Python once per
distinct value; over a large log that is still hundreds of thousands of iterations (every
beneficiary read makes a distinct request line), which interpreted cost about a second per
million lines. The loops live here, typed, so that they compile to C.
"""

from __future__ import annotations

import re
from typing import Any, Final

from librt.strings import read_f64_le, read_i32_le, read_i64_le
from mypy_extensions import i64

from rempart.events import Event
from rempart.ingest.normalise import Normalizer, RequestInfo
from rempart.ingest.routes import Route

#: ``ip ident user``: three fields, none empty, one space apart (``columnar`` cuts the same
#: shape with Arrow).
_HEAD: Final = re.compile(r"([^ ]+) [^ ]+ ([^ ]+)")
#: What ``_cut`` gives for a head without the ``ip ident user`` shape, told by its empty ip (a
#: cut's parts are never empty).
_NOT_A_HEAD: Final = ("", "")


def cut_heads(
    heads: list[bytes],
) -> tuple[list[int], list[int], list[bool], list[str | None], list[str | None]]:
    """``ip ident user`` (the bytes before `` [time] ``) -> ip and user. Per distinct head:
    its ip's and user's numbers in the returned value lists (0, a null, for a head without
    that shape) and whether it has the shape. (``columnar`` does the same with Arrow when its
    heads are valid UTF-8, which is nearly always: this is for the other chunks.)"""
    ip_no: dict[str, int] = {}
    user_no: dict[str, int] = {}
    ips: list[str | None] = [None]
    users: list[str | None] = [None]
    ip_of: list[int] = []
    user_of: list[int] = []
    good: list[bool] = []
    for raw in heads:
        ip, user = _cut(raw)
        if not ip:  # _NOT_A_HEAD
            ip_of.append(0)
            user_of.append(0)
            good.append(False)
            continue
        i = ip_no.get(ip)
        if i is None:
            i = ip_no[ip] = len(ips)
            ips.append(ip)
        u = user_no.get(user)
        if u is None:
            u = user_no[user] = len(users)
            users.append(user)
        ip_of.append(i)
        user_of.append(u)
        good.append(True)
    return ip_of, user_of, good, ips, users


def _cut(raw: bytes) -> tuple[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # a cut inside a character: the end of the prefix is not ASCII
        return _NOT_A_HEAD
    m = _HEAD.fullmatch(text)
    if m is None:
        return _NOT_A_HEAD
    return str(m.group(1)), str(m.group(2))


class InfoColumns:
    """What the distinct request lines of a chunk mean, as columns (one item per line)."""

    __slots__ = ("action", "method", "missing", "path", "query", "route_code", "token")

    def __init__(self) -> None:
        self.action: list[str] = []
        self.method: list[str] = []
        self.path: list[str] = []
        self.query: list[str | None] = []
        self.token: list[str | None] = []
        #: route number * 2 + (1 when the request names a beneficiary)
        self.route_code: list[int] = []
        #: Any request line that is not 2 or 3 words (``None`` in the infos)?
        self.missing = False


def info_columns(
    infos: list[RequestInfo | None],
    absent: RequestInfo,
    route_no: dict[int, int],
    routes: list[Route],
) -> InfoColumns:
    """Columns of ``infos`` (``absent`` standing for None); routes met for the first time are
    numbered into ``route_no`` (by identity) and ``routes``."""
    out = InfoColumns()
    for maybe in infos:
        info = absent
        if maybe is None:
            out.missing = True
        else:
            info = maybe
        route = info.route
        key = id(route)
        no = route_no.get(key)
        if no is None:
            no = route_no[key] = len(routes)
            routes.append(route)
        out.action.append(route.action)
        out.method.append(info.method)
        out.path.append(info.path)
        out.query.append(info.query)
        token = info.token
        out.token.append(token)
        out.route_code.append(no * 2 + (0 if token is None else 1))
    return out


def account_columns(
    names: list[str | None], normalizer: Normalizer
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """Per account name (None or ``-``: no account): the interned name, its peer group and its
    directory organisation (``Normalizer.account_info``), as three columns."""
    users: list[str | None] = []
    kinds: list[str | None] = []
    orgs: list[str | None] = []
    for name in names:
        if name is None or name == "-":
            users.append(None)
            kinds.append(None)
            orgs.append(None)
        else:
            user, kind, org = normalizer.account_info(name)
            users.append(user)
            kinds.append(kind)
            orgs.append(org)
    return users, kinds, orgs


def present_values(values: list[str | None]) -> list[str | None]:
    """``values`` with ``-`` and ``""`` (a field left empty) as None."""
    return [None if v is None or v == "-" or v == "" else v for v in values]


def add_present(into: set[str], values: list[str | None], indices: list[int]) -> None:
    """Add ``values[i]`` for each ``i`` in ``indices`` to ``into``, except None and ``""``."""
    for i in indices:
        value = values[i]
        if value:
            into.add(value)


def combined_events(
    vals: dict[str, list[Any]],
    cols: dict[str, bytes],
    ts: bytes,
    status: bytes,
    size: bytes,
    source: str,
    lines: bytes,
) -> list[Event]:
    """The events of a chunk's columnar rows, in row order (``rempart.ingest.columnar``:
    ``vals`` are the distinct values of each column and ``cols`` the per-row indices into them,
    by index name: ``req``, ``code``, ``user``, ``ip``, ``ua`` and, when present, ``sid`` and
    ``org``).

    The per-row columns come as the bytes of their Arrow buffers, little-endian
    (``columnar.le_bytes``): 32-bit indices and status, 64-bit sizes and line numbers, 64-bit
    float times. Compiled, each value is read in place. As Python lists (before), each row
    made and freed an int or float object per column, allocated from cold free lists: one
    load in the allocator took 3% of a 10M-line hunt's samples. Measured on that log
    (``bench/same_time.py``): 8.0% and 9.4% less CPU for the whole hunt; cachegrind on the
    decode of 500,000 lines: 3.5% fewer instructions, 7% fewer last-level data misses.

    Columns that share an index (the request's action, method, path, query and token; the
    outcome and categories; the account, its kind and its directory organisation) read it once
    per row. The organisation of the line (``org``, when the profile has that field) wins over
    the directory's.
    """
    action, method, path, query = vals["action"], vals["method"], vals["path"], vals["query"]
    token, outcome, categories = vals["token"], vals["outcome"], vals["categories"]
    users, kinds, dir_orgs = vals["user"], vals["kind"], vals["dir_org"]
    ips, uas = vals["ip"], vals["ua"]
    req_b, code_b, user_b = cols["req"], cols["code"], cols["user"]
    ip_b, ua_b = cols["ip"], cols["ua"]
    sids = vals.get("sid")
    sid_b = cols.get("sid", req_b)
    orgs = vals.get("org")
    org_b = cols.get("org", req_b)
    out: list[Event] = []
    n: i64 = len(ts) >> 3
    r: i64
    for r in range(n):
        at: i64 = r << 2
        at8: i64 = r << 3
        q = i64(read_i32_le(req_b, at))
        c = i64(read_i32_le(code_b, at))
        u = i64(read_i32_le(user_b, at))
        org = dir_orgs[u]
        if orgs is not None:
            org = orgs[read_i32_le(org_b, at)] or org
        out.append(
            Event(
                read_f64_le(ts, at8),
                ips[read_i32_le(ip_b, at)],
                action[q],
                outcome[c],
                users[u],
                org,
                uas[read_i32_le(ua_b, at)],
                method[q],
                path[q],
                query[q],
                read_i32_le(status, at),
                read_i64_le(size, at8),
                None if sids is None else sids[read_i32_le(sid_b, at)],
                token[q],
                categories[c],
                kinds[u],
                source,
                read_i64_le(lines, at8),
            )
        )
    return out
