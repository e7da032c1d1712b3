"""Attack generators: each turns resolved parameters into tagged requests.

Login attacks (brute force, spraying, stuffing) and harvests from attacker infrastructure are
generated whole when the simulation reaches their start day. The insider reads from the
account's own workstations and sessions, so it *injects* reads into the account's legitimate
days instead (see ``legit.account_day``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rempart.sim.directory import Account
from rempart.sim.kinds import opening_minutes
from rempart.sim.legit import RIGHTS_PREFIX, RT, Day, Injections
from rempart.sim.population import FIRST_NAMES_F, FIRST_NAMES_M, SURNAMES, Population
from rempart.sim.render import Req
from rempart.sim.scenarios import PROXY_PREFIXES, SINGLE_ACCOUNT, SimOptionsError

#: Which kinds each scenario's targets are drawn from (None: any account).
TARGET_KINDS: dict[str, tuple[str, ...] | None] = {
    "brute_force": None,
    "password_spraying": None,
    "stuffing_single_ip": None,
    "stuffing_distributed": None,
    "mass_harvest": ("PH", "OP", "IN", "MD", "DE", "KI"),
    "slow_harvest": ("MD", "IN", "KI", "DE", "PH"),
    "insider": ("HP", "CS", "PH"),
}
#: Scenarios that take their accounts for themselves (no two of them share an account).
EXCLUSIVE = frozenset({"brute_force", "mass_harvest", "slow_harvest", "insider"})
#: Scenarios that need to know whom the target account served before the attack.
TRACKED = frozenset({"mass_harvest", "slow_harvest"})


@dataclass(slots=True)
class Attack:
    tag: int
    id: str
    scenario: str
    params: dict[str, Any]
    targets: list[Account]
    start_ms: int
    start_day: int
    rng: random.Random = field(repr=False, default_factory=random.Random)


@dataclass(slots=True)
class Context:
    pop: Population
    days: list[Day]
    injections: Injections
    names: frozenset[str]


def resolve_attacks(
    seed: int,
    resolved: list[tuple[str, dict[str, Any]]],
    accounts: list[Account],
    days: list[Day],
) -> list[Attack]:
    """Choose target accounts and fix start times; mark harvest targets as tracked."""
    by_name = {a.name: a for a in accounts}
    used: set[int] = set()
    counts: dict[str, int] = {}
    out: list[Attack] = []
    first_ms = days[0].base_ms
    end_ms = days[-1].base_ms + 86_400_000
    for tag, (scenario, params) in enumerate(resolved, start=1):
        rng = random.Random(seed * 15_485_863 + tag * 7_919 + 5)
        counts[scenario] = counts.get(scenario, 0) + 1
        start = datetime.fromisoformat(params["start"])
        start_ms = int(start.timestamp() * 1000)
        if not first_ms <= start_ms < end_ms:
            raise SimOptionsError(
                f"start {params['start']} is outside the simulated period", where=scenario
            )
        start_day = max(i for i, d in enumerate(days) if d.base_ms <= start_ms)
        if "accounts" in params:
            missing = [n for n in params["accounts"] if n not in by_name]
            if missing:
                raise SimOptionsError(f"unknown account {missing[0]!r}", where=scenario)
            targets = [by_name[n] for n in params["accounts"]]
        else:
            targets = _choose_targets(scenario, params, rng, accounts, used)
        if scenario in EXCLUSIVE:
            used.update(a.index for a in targets)
        if scenario in TRACKED:
            for acc in targets:
                if acc.served is None:
                    acc.served = []
        params = dict(params, accounts=[a.name for a in targets])
        out.append(
            Attack(
                tag,
                f"{scenario}-{counts[scenario]}",
                scenario,
                params,
                targets,
                start_ms,
                start_day,
                rng,
            )
        )
    return out


def _choose_targets(
    scenario: str,
    params: dict[str, Any],
    rng: random.Random,
    accounts: list[Account],
    used: set[int],
) -> list[Account]:
    kinds = TARGET_KINDS[scenario]
    exclusive = scenario in EXCLUSIVE

    def fits(a: Account, any_kind: bool, reuse: bool) -> bool:
        kind_ok = any_kind or kinds is None or a.kind.code in kinds
        return kind_ok and (reuse or not exclusive or a.index not in used)

    # Small directories: prefer the scenario's kinds, then any free account, then sharing.
    pool: list[Account] = []
    for any_kind, reuse in ((False, False), (True, False), (False, True), (True, True)):
        pool = [a for a in accounts if fits(a, any_kind, reuse)]
        if pool:
            break
    if scenario in ("stuffing_single_ip", "stuffing_distributed"):
        n = round(params["n_accounts"] * params["existing_share"])
    else:
        n = params.get("n_accounts", SINGLE_ACCOUNT.get(scenario, 1))
    return rng.sample(pool, max(1, min(int(n), len(pool))))


# --- helpers ---------------------------------------------------------------------------------


def _sid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _login(
    out: list[Req], t: int, ip: str, name: str, org: str, ua: str, ok: bool, tag: int
) -> None:
    out.append(
        (
            t,
            ip,
            name,
            "POST",
            "/auth/login",
            "",
            200 if ok else 401,
            412 if ok else 96,
            "-",
            ua,
            RT[60 + (t % 150)],
            "-",
            org,
            "auth.login",
            tag,
            "",
        )
    )


def _me(out: list[Req], t: int, ip: str, name: str, org: str, ua: str, sid: str, tag: int) -> None:
    out.append(
        (
            t,
            ip,
            name,
            "GET",
            "/api/v1/me",
            "",
            200,
            655,
            "-",
            ua,
            RT[9 + t % 20],
            sid,
            org,
            "page",
            tag,
            "",
        )
    )


def _read(
    out: list[Req],
    t: int,
    ip: str,
    acc: Account,
    ua: str,
    sid: str,
    nir: str,
    hit: bool,
    tag: int,
) -> None:
    out.append(
        (
            t,
            ip,
            acc.name,
            "GET",
            RIGHTS_PREFIX + nir + "/droits",
            "",
            200 if hit else 404,
            1650 + t % 900 if hit else 162,
            "-",
            ua,
            RT[12 + t % 60],
            sid,
            acc.organization_id,
            "beneficiary.read",
            tag,
            nir,
        )
    )


def _fake_names(rng: random.Random, n: int, names: frozenset[str]) -> list[str]:
    """Names from a leaked combo list that are not accounts of this portal."""
    out: list[str] = []
    while len(out) < n:
        if rng.random() < 0.5:
            name = f"{rng.choice(('PH', 'MD', 'IN', 'OP', 'LB'))}{rng.randint(1, 9999):04d}"
            if name in names:
                continue
        else:
            first = rng.choice(FIRST_NAMES_F + FIRST_NAMES_M).lower()
            name = f"{first}.{rng.choice(SURNAMES).lower().replace(' ', '')}{rng.randint(1, 99)}"
            name += rng.choice(("@gmail.com", "@orange.fr", "@hotmail.fr", "@free.fr"))
        out.append(name)
    return out


def _harvest_people(
    rng: random.Random, pop: Population, acc: Account, k_hit: int, served_before: int
) -> list[int]:
    """``k_hit`` distinct people, mostly never served by ``acc``, a few it served before."""
    known = acc.served or acc.panel[:50]
    own = rng.sample(known, min(served_before, len(known)))
    panel = set(acc.panel) | acc.served_set
    k_hit = min(k_hit, (len(pop) - len(panel)) // 2)
    chosen = set(own)
    people = list(own)
    while len(people) < k_hit:
        i = int(rng.random() * len(pop))
        if i not in panel and i not in chosen:
            chosen.add(i)
            people.append(i)
    rng.shuffle(people)
    return people


# --- login attacks ---------------------------------------------------------------------------


def brute_force(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    acc = a.targets[0]
    t, mean = a.start_ms, 60_000 / float(p["rate"])
    n = int(p["attempts"])
    for k in range(n):
        ok = bool(p["succeeds"]) and k == n - 1
        _login(out, t, p["ip"], acc.name, acc.organization_id, p["user_agent"], ok, a.tag)
        t += max(20, int(rng.expovariate(1 / mean)))
    if p["succeeds"]:
        _me(out, t, p["ip"], acc.name, acc.organization_id, p["user_agent"], _sid(rng), a.tag)
    return out


def password_spraying(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    rounds = int(p["passwords"])
    n_ok = round(len(a.targets) * float(p["success_rate"]))
    winners = {acc.index: rng.randrange(rounds) for acc in rng.sample(a.targets, n_ok)}
    found: set[int] = set()
    t = a.start_ms
    for r in range(rounds):
        order = list(a.targets)
        rng.shuffle(order)
        for acc in order:
            if acc.index in found:
                continue
            ok = winners.get(acc.index) == r
            _login(out, t, p["ip"], acc.name, acc.organization_id, p["user_agent"], ok, a.tag)
            if ok:
                found.add(acc.index)
                _me(
                    out,
                    t + 700,
                    p["ip"],
                    acc.name,
                    acc.organization_id,
                    p["user_agent"],
                    _sid(rng),
                    a.tag,
                )
            t += int(float(p["interval_s"]) * 1000 * rng.uniform(0.8, 1.2))
        t += int(float(p["round_gap_min"]) * 60_000)
    return out


def _stuffing_pairs(a: Attack, ctx: Context) -> list[tuple[str, Account | None, bool]]:
    p, rng = a.params, a.rng
    n_real = len(a.targets)
    fakes = _fake_names(rng, max(0, int(p["n_accounts"]) - n_real), ctx.names)
    n_ok = round(n_real * float(p["success_rate"]))
    ok_idx = {acc.index for acc in rng.sample(a.targets, n_ok)}
    pairs: list[tuple[str, Account | None, bool]] = [
        (acc.name, acc, acc.index in ok_idx) for acc in a.targets
    ]
    pairs.extend((name, None, False) for name in fakes)
    rng.shuffle(pairs)
    return pairs


def _try(
    out: list[Req],
    t: int,
    ip: str,
    ua: str,
    pair: tuple[str, Account | None, bool],
    rng: random.Random,
    tag: int,
) -> None:
    name, acc, ok = pair
    org = acc.organization_id if acc is not None else ""
    _login(out, t, ip, name, org, ua, ok, tag)
    if ok:
        _me(out, t + 500, ip, name, org, ua, _sid(rng), tag)


def stuffing_single_ip(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    t, mean = a.start_ms, 60_000 / float(p["rate"])
    for pair in _stuffing_pairs(a, ctx):
        _try(out, t, p["ip"], p["user_agent"], pair, rng, a.tag)
        t += max(30, int(rng.expovariate(1 / mean)))
    return out


def stuffing_distributed(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    n_ips = int(p["n_ips"])
    ips = []
    for _ in range(n_ips):
        x, y = rng.choice(PROXY_PREFIXES)
        ips.append(f"{x}.{y}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    a.params["ips"] = ips
    period = int(float(p["period_s"]) * 1000)
    phase = [rng.randrange(period) for _ in range(n_ips)]
    for j, pair in enumerate(_stuffing_pairs(a, ctx)):
        i, r = j % n_ips, j // n_ips
        t = a.start_ms + phase[i] + r * period + rng.randint(-300, 300)
        _try(out, t, ips[i], p["user_agent"], pair, rng, a.tag)
    return out


# --- harvesting ------------------------------------------------------------------------------


def mass_harvest(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    ip, ua, pop = p["ip"], p["user_agent"], ctx.pop
    mean = 60_000 / float(p["rate"])
    t = a.start_ms
    for acc in a.targets:
        count = int(p["count"])
        k_hit = round(count * float(p["hit_rate"]))
        people = _harvest_people(rng, pop, acc, k_hit, int(p["served_before"]))
        seq = [(pop.nir(i), True) for i in people]
        seq.extend((pop.unknown_nir(rng), False) for _ in range(count - k_hit))
        rng.shuffle(seq)
        _login(out, t, ip, acc.name, acc.organization_id, ua, True, a.tag)
        sid = _sid(rng)
        _me(out, t + 350, ip, acc.name, acc.organization_id, ua, sid, a.tag)
        t += 1200
        for nir, hit in seq:
            _read(out, t, ip, acc, ua, sid, nir, hit, a.tag)
            gap = max(40, int(rng.expovariate(1 / mean)))
            if rng.random() < 0.001:  # the script stalls or the operator pauses it
                gap += rng.randint(120_000, 900_000)
            t += gap
        t += rng.randint(600_000, 3_600_000)
    return out


def slow_harvest(a: Attack, ctx: Context) -> list[Req]:
    p, rng = a.params, a.rng
    out: list[Req] = []
    ua, pop = p["user_agent"], ctx.pop
    ips: list[str] = []
    for acc in a.targets:
        x, y = rng.choice(PROXY_PREFIXES)
        ip = f"{x}.{y}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ips.append(ip)
        n_days = min(int(p["days"]), len(ctx.days) - a.start_day)
        daily = [
            max(5, int(acc.base_volume * float(p["multiplier"]) * rng.uniform(0.8, 1.2)))
            for _ in range(n_days)
        ]
        k_total = sum(daily)
        k_hit = round(k_total * float(p["hit_rate"]))
        people = _harvest_people(rng, pop, acc, k_hit, int(p["served_before"]))
        seq = [(pop.nir(i), True) for i in people]
        seq.extend((pop.unknown_nir(rng), False) for _ in range(k_total - k_hit))
        rng.shuffle(seq)
        pos = 0
        for d in range(n_days):
            day = ctx.days[a.start_day + d]
            wd = day.weekday
            hours = (acc.kind.weekday_hours, acc.kind.saturday_hours, acc.kind.sunday_hours)[
                0 if wd < 5 else wd - 4
            ]
            todo = seq[pos : pos + daily[d]]
            pos += daily[d]
            if wd == 6 and acc.kind.sunday[1] < 0.3:  # closed on Sundays: stay quiet
                todo = todo[: len(todo) // 4]
            windows = opening_minutes(hours)
            n_bursts = rng.randint(1, 3)
            size = -(-len(todo) // n_bursts) if todo else 0
            for b in range(n_bursts):
                burst = todo[b * size : (b + 1) * size]
                if not burst:
                    continue
                lo, hi = rng.choice(windows)
                t = day.base_ms + rng.randint(lo, max(lo, hi - 30)) * 60_000
                t += rng.randrange(60_000)
                t = max(t, a.start_ms) if d == 0 else t
                _login(out, t, ip, acc.name, acc.organization_id, ua, True, a.tag)
                sid = _sid(rng)
                _me(out, t + 400, ip, acc.name, acc.organization_id, ua, sid, a.tag)
                t += 2_000
                for nir, hit in burst:
                    _read(out, t, ip, acc, ua, sid, nir, hit, a.tag)
                    t += rng.randint(8_000, 45_000)
    a.params["ips"] = ips
    return out


def insider(a: Attack, ctx: Context) -> list[Req]:
    """Registers reads in the account's own sessions; they are generated with its day."""
    p, rng = a.params, a.rng
    acc = a.targets[0]
    n_days = min(int(p["days"]), len(ctx.days) - a.start_day)
    lo, hi = ctx.pop.area_range(acc.area)
    panel = set(acc.panel)
    chosen: set[int] = set()
    for _ in range(int(p["count"])):
        while True:
            who = lo + rng.randrange(hi - lo) if rng.random() < 0.7 else rng.randrange(len(ctx.pop))
            if who not in panel and who not in chosen:
                break
        chosen.add(who)
        day = a.start_day + rng.randrange(n_days)
        ctx.injections.setdefault((acc.index, day), []).append((who, a.tag))
    return []


GENERATORS: dict[str, Callable[[Attack, Context], list[Req]]] = {
    "brute_force": brute_force,
    "password_spraying": password_spraying,
    "stuffing_single_ip": stuffing_single_ip,
    "stuffing_distributed": stuffing_distributed,
    "mass_harvest": mass_harvest,
    "slow_harvest": slow_harvest,
    "insider": insider,
}
