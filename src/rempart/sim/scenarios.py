"""Attack scenarios: their parameters, documented ranges, and per-seed randomisation.

Every parameter a user does not give is drawn from ``PARAM_RANGES`` with a generator derived
from the simulation seed, so ``--scenario mass_harvest`` alone is a different (but reproducible)
harvest for each seed. ``draw_params`` is also what ``SimOptions.randomised`` uses, so an
evaluation harness can record every parameter before running.

Parameters common to all scenarios: ``start`` (local ISO date-time, Europe/Paris, within the
simulated period), ``ip`` (or ``ips`` for distributed ones), ``user_agent``. Target accounts can
be forced with ``accounts=PH0042+MD0101`` (``+``-separated), otherwise ``n_accounts`` are chosen
from the directory.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from rempart.errors import ConfigError
from rempart.sim.render import PARIS


class SimOptionsError(ConfigError):
    """Invalid simulator options (unknown scenario or parameter, value out of range)."""


@dataclass(frozen=True, slots=True)
class Param:
    """A scenario parameter: its type, the range defaults are drawn from, and what it means."""

    type: type
    low: float = 0
    high: float = 0
    doc: str = ""


SCENARIOS: tuple[str, ...] = (
    "brute_force",
    "password_spraying",
    "stuffing_single_ip",
    "stuffing_distributed",
    "mass_harvest",
    "slow_harvest",
    "insider",
)

PARAM_RANGES: dict[str, dict[str, Param]] = {
    "brute_force": {
        "attempts": Param(int, 300, 3000, "password guesses on the one target account"),
        "rate": Param(float, 20, 300, "guesses per minute"),
        "succeeds": Param(bool, 0, 0.3, "the last guess succeeds (then GET /api/v1/me)"),
    },
    "password_spraying": {
        "n_accounts": Param(int, 50, 400, "existing accounts sprayed from one IP"),
        "passwords": Param(int, 1, 3, "passwords tried per account (one round each)"),
        "interval_s": Param(float, 5, 60, "seconds between two attempts"),
        "round_gap_min": Param(float, 20, 90, "pause between rounds, minutes"),
        "success_rate": Param(float, 0.0, 0.02, "share of accounts whose password is found"),
    },
    "stuffing_single_ip": {
        "n_accounts": Param(int, 300, 3000, "credential pairs tried (some names do not exist)"),
        "rate": Param(float, 30, 600, "attempts per minute"),
        "existing_share": Param(float, 0.3, 0.6, "share of tried names that are real accounts"),
        "success_rate": Param(float, 0.005, 0.03, "share of real accounts whose pair works"),
    },
    "stuffing_distributed": {
        "n_ips": Param(int, 50, 400, "proxy IPs sharing one client and one timing"),
        "n_accounts": Param(int, 1000, 8000, "credential pairs tried"),
        "period_s": Param(float, 60, 600, "each IP sends one attempt every period_s seconds"),
        "existing_share": Param(float, 0.3, 0.6, "share of tried names that are real accounts"),
        "success_rate": Param(float, 0.005, 0.03, "share of real accounts whose pair works"),
    },
    "mass_harvest": {
        "n_accounts": Param(int, 1, 1, "phished accounts used (one after the other)"),
        "count": Param(int, 2000, 20000, "rights checks per account"),
        "rate": Param(float, 60, 600, "rights checks per minute (machine speed)"),
        "hit_rate": Param(float, 0.75, 0.95, "share of checks on people who exist (else 404)"),
        "served_before": Param(int, 0, 5, "people the account legitimately served, re-read"),
    },
    "slow_harvest": {
        "n_accounts": Param(int, 10, 40, "compromised accounts, each read a little"),
        "days": Param(int, 2, 6, "days the harvest lasts"),
        "multiplier": Param(float, 2, 5, "reads per day as a multiple of the usual volume"),
        "hit_rate": Param(float, 0.9, 0.99, "share of checks on people who exist"),
        "served_before": Param(int, 0, 2, "people each account served before, re-read"),
    },
    "insider": {
        "count": Param(int, 5, 40, "records read with no care relationship"),
        "days": Param(int, 2, 10, "days over which they are read"),
    },
}
COMMON_PARAMS: dict[str, Param] = {
    "start": Param(str, doc="local start, ISO date-time (Europe/Paris)"),
    "accounts": Param(list, doc="target accounts, '+'-separated (default: drawn)"),
    "ip": Param(str, doc="attacker IP (default: drawn from hosting ranges)"),
    "user_agent": Param(str, doc="attacker client (default: drawn)"),
}
#: Scenarios whose pace can be given as a total duration instead (``duration_min``), and the
#: parameter that the duration then sets.
DURATION_SETS: dict[str, str] = {
    "brute_force": "rate",
    "stuffing_single_ip": "rate",
    "mass_harvest": "rate",
    "password_spraying": "interval_s",
    "stuffing_distributed": "period_s",
}
DURATION_PARAM = Param(float, doc="total duration in minutes (sets the pace parameter)")
#: Scenarios that draw several IPs themselves (or use the account's own, for the insider).
NO_IP_PARAM = frozenset({"insider", "stuffing_distributed", "slow_harvest"})
#: Scenarios whose account count is fixed.
SINGLE_ACCOUNT = {"brute_force": 1, "insider": 1}

_SCRIPT_UAS = (
    "python-requests/2.31.0",
    "python-httpx/0.27.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36",
)
_BROWSERISH_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.5993.88 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
)
_BRUTE_UAS = ("Mozilla/4.0 (Hydra)", "python-requests/2.28.1", "Mozilla/5.0 (compatible; Nmap)")
#: Hosting / VPN ranges (never used by legitimate practitioners in the simulation).
HOSTING_PREFIXES: tuple[tuple[int, int], ...] = (
    (185, 220), (45, 134), (193, 42), (5, 188), (194, 26), (103, 151), (141, 98), (146, 70),
)  # fmt: skip
#: Residential proxy ranges abroad (distributed stuffing, slow harvest).
PROXY_PREFIXES: tuple[tuple[int, int], ...] = (
    (41, 92), (102, 89), (177, 37), (186, 15), (201, 48), (190, 120), (179, 6), (14, 161),
    (27, 72), (49, 36), (110, 54), (197, 210),
)  # fmt: skip


def parse_value(scenario: str, key: str, text: str) -> Any:
    """Typed value of ``key=text`` for ``scenario``; one clear error otherwise."""
    spec = PARAM_RANGES.get(scenario, {}).get(key) or COMMON_PARAMS.get(key)
    if key == "duration_min" and scenario in DURATION_SETS:
        spec = DURATION_PARAM
    if spec is None:
        known = ", ".join(sorted([*PARAM_RANGES.get(scenario, {}), *COMMON_PARAMS]))
        raise SimOptionsError(f"unknown parameter {key!r}", where=scenario, hint=f"one of {known}")
    try:
        if spec.type is bool:
            low = text.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return low in ("true", "1", "yes")
        if spec.type is list:
            return [a for a in text.split("+") if a]
        if key == "start":
            return parse_start(text).isoformat()
        return spec.type(text)
    except ValueError:
        raise SimOptionsError(
            f"{key}={text!r} is not a valid {spec.type.__name__}", where=scenario
        ) from None


def parse_start(text: str) -> datetime:
    """A local (Europe/Paris) start time from ISO text; a date alone means 09:00."""
    try:
        if len(text) == 10:
            dt = datetime.combine(date.fromisoformat(text), time(9, 0))
        else:
            dt = datetime.fromisoformat(text)
    except ValueError:
        raise SimOptionsError(f"start={text!r} is not an ISO date or date-time") from None
    return dt.replace(tzinfo=PARIS) if dt.tzinfo is None else dt.astimezone(PARIS)


def _start_hour(scenario: str, rng: random.Random) -> float:
    if scenario in ("slow_harvest", "insider"):
        return 9.0 + rng.random() * 8
    if scenario == "mass_harvest" and rng.random() < 0.5:
        return rng.choice((rng.uniform(0.5, 6.5), rng.uniform(20.0, 23.5)))  # off hours
    return rng.uniform(0.5, 22.0)


def draw_params(
    scenario: str, rng: random.Random, *, start: date, days: int, given: dict[str, Any]
) -> dict[str, Any]:
    """Every parameter of ``scenario``: the ``given`` ones, the rest drawn from ``rng``.

    Account names are not drawn here (they need the directory); ``n_accounts`` is.
    """
    if scenario not in PARAM_RANGES:
        raise SimOptionsError(f"unknown scenario {scenario!r}", hint=", ".join(SCENARIOS))
    out: dict[str, Any] = {}
    for key, spec in PARAM_RANGES[scenario].items():
        if spec.type is bool:
            value: Any = rng.random() < spec.high
        elif spec.type is int:
            value = rng.randint(int(spec.low), int(spec.high))
        else:
            value = round(rng.uniform(spec.low, spec.high), 4)
        out[key] = given.get(key, value)
    if "days" in out:
        out["days"] = max(1, min(int(out["days"]), days))
    span = out.get("days", 1)
    first = min(1, days - 1)
    last = max(first, days - int(span))
    day = start + timedelta(days=rng.randint(first, last))
    hour = _start_hour(scenario, rng)
    local = datetime.combine(day, time(int(hour), int(hour % 1 * 60), rng.randint(0, 59)))
    out["start"] = given.get("start", local.replace(tzinfo=PARIS).isoformat())
    pool = HOSTING_PREFIXES if scenario != "slow_harvest" else PROXY_PREFIXES
    a, b = rng.choice(pool)
    ip = f"{a}.{b}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if scenario not in NO_IP_PARAM:
        out["ip"] = given.get("ip", ip)
    if scenario in ("brute_force", "password_spraying"):
        ua = rng.choice(_BRUTE_UAS)
    elif scenario in ("slow_harvest", "stuffing_distributed"):
        ua = rng.choice(_BROWSERISH_UAS)
    else:
        ua = rng.choice(_SCRIPT_UAS)
    if scenario != "insider":  # an insider uses the account's own workstations
        out["user_agent"] = given.get("user_agent", ua)
    if "duration_min" in given:
        _apply_duration(scenario, out, given)
    if "accounts" in given:
        out["accounts"] = list(given["accounts"])
        if "n_accounts" in out:
            out["n_accounts"] = len(out["accounts"])
    for key in given:
        if key not in out:
            raise SimOptionsError(f"unknown parameter {key!r}", where=scenario)
    return out


def _apply_duration(scenario: str, out: dict[str, Any], given: dict[str, Any]) -> None:
    """Set the pace parameter so that the attack lasts ``duration_min`` minutes."""
    if scenario not in DURATION_SETS:
        raise SimOptionsError("duration_min does not apply", where=scenario)
    pace = DURATION_SETS[scenario]
    if pace in given:
        raise SimOptionsError(f"give {pace} or duration_min, not both", where=scenario)
    minutes = float(given["duration_min"])
    if minutes <= 0:
        raise SimOptionsError("duration_min must be positive", where=scenario)
    if scenario == "brute_force":
        out["rate"] = out["attempts"] / minutes
    elif scenario == "stuffing_single_ip":
        out["rate"] = out["n_accounts"] / minutes
    elif scenario == "mass_harvest":
        out["rate"] = out["count"] * out["n_accounts"] / minutes
    elif scenario == "password_spraying":
        out["interval_s"] = minutes * 60 / (out["n_accounts"] * out["passwords"])
        out["round_gap_min"] = 0.0
    else:
        rounds = -(-int(out["n_accounts"]) // int(out["n_ips"]))
        out["period_s"] = minutes * 60 / rounds
    out["duration_min"] = minutes
