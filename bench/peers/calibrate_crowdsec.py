"""How the CrowdSec bucket capacities in crowdsec/scenarios/ were chosen.

Replays an attack-free log (``rempart sim --no-attacks``) through a model of each leaky bucket
(same filter, group key, ``distinct`` key and leak speed as the YAML) and prints, per scenario,
the highest fill any legitimate key reached and the capacity that fill suggests (+10%, +1).
CrowdSec overflows when an event is poured into a full bucket, so a capacity at or above the
highest legitimate fill raises no alert on that traffic.

    .venv/bin/python bench/peers/calibrate_crowdsec.py bench/peers/work/logs/calibration/access.log
"""

from __future__ import annotations

import math
import re
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

LINE = re.compile(r'^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) [^"]*" (\d{3}) ')
READ = re.compile(r"^/api/v1/beneficiaires/([0-9][0-9AB][0-9]{13})/droits$")


@dataclass
class Row:
    ts: float
    ip: str
    user: str
    method: str
    path: str
    status: str
    sub_type: str
    beneficiary: str


@dataclass
class Bucket:
    level: float = 0.0
    last: float = 0.0
    recent: deque[str] = field(default_factory=deque)


@dataclass(frozen=True)
class Model:
    name: str
    leak_s: float
    keep: Callable[[Row], bool]
    group: Callable[[Row], str]
    distinct: Callable[[Row], str] | None = None


MODELS = [
    Model("rempart/login-bf-ip", 30, lambda r: r.sub_type == "auth_fail", lambda r: r.ip),
    Model(
        "rempart/login-distinct-accounts-ip",
        300,
        lambda r: r.sub_type in ("auth_fail", "auth_ok"),
        lambda r: r.ip,
        lambda r: r.user,
    ),
    Model(
        "rempart/login-distinct-accounts-site",
        60,
        lambda r: r.sub_type == "auth_fail",
        lambda r: "site",
        lambda r: r.user,
    ),
    Model(
        "rempart/harvest-distinct-beneficiaries-account",
        60,
        lambda r: r.sub_type == "beneficiary_read",
        lambda r: r.user,
        lambda r: r.beneficiary,
    ),
    Model(
        "rempart/harvest-distinct-beneficiaries-ip",
        60,
        lambda r: r.sub_type == "beneficiary_read",
        lambda r: r.ip,
        lambda r: r.beneficiary,
    ),
    Model(
        "rempart/http-probing-ip",
        10,
        lambda r: r.sub_type == "not_found",
        lambda r: r.ip,
        lambda r: r.path,
    ),
]


def rows(path: Path) -> list[Row]:
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = LINE.match(line)
            if not m:
                continue
            ip, user, when, method, req, status = m.groups()
            ts = datetime.strptime(when, "%d/%b/%Y:%H:%M:%S %z").timestamp()
            read = READ.match(req)
            if method == "POST" and req == "/auth/login":
                sub = "auth_ok" if status == "200" else "auth_fail"
            elif read and status == "200":
                sub = "beneficiary_read"
            elif status == "404":
                sub = "not_found"
            else:
                sub = "other"
            out.append(Row(ts, ip, user, method, req, status, sub, read.group(1) if read else ""))
    return out


def max_fill(model: Model, data: list[Row]) -> tuple[float, str]:
    """Highest bucket level any group reached (no overflow), and which group."""
    buckets: dict[str, Bucket] = {}
    best, who = 0.0, "-"
    for row in data:
        if not model.keep(row):
            continue
        key = model.group(row)
        b = buckets.setdefault(key, Bucket(last=row.ts))
        b.level = max(0.0, b.level - (row.ts - b.last) / model.leak_s)
        b.last = row.ts
        while len(b.recent) > math.ceil(b.level):
            b.recent.popleft()
        if model.distinct is not None:
            value = model.distinct(row)
            if value in b.recent:
                continue
            b.recent.append(value)
        b.level += 1
        if b.level > best:
            best, who = b.level, key
    return best, who


def main() -> int:
    data = rows(Path(sys.argv[1]))
    print(f"{len(data)} lines")
    for model in MODELS:
        fill, who = max_fill(model, data)
        print(f"{model.name:50s} max fill {fill:7.1f} ({who}) -> capacity {int(fill * 1.1) + 1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
