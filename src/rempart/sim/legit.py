"""Legitimate traffic: one practitioner account's working day on the portal.

A day is planned around *anchors* (rights checks, claim lists, payment lists) placed by the
kind's opening-hours profile; each workstation's anchors are grouped into sessions (a new login
after ``SESSION_IDLE_MS`` of inactivity). A session starts with the SPA (``/app/``, static
assets, anonymous), a login (sometimes a mistyped password first: 401 then 200), ``/api/v1/me``
and notifications. A successful rights check is usually followed within minutes by a claim.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from rempart.sim.directory import MOBILE_PREFIXES, Account, random_ip
from rempart.sim.kinds import WEEKDAY_FACTOR, minute_weights
from rempart.sim.population import Population
from rempart.sim.render import Req

SESSION_IDLE_MS = 90 * 60_000
#: A session's claims and logout end within this time of its last rights check.
AFTER_LAST_MS = 10 * 60_000
#: Time from the last refused attempt to the login, drawn log-uniformly (milliseconds).
FORGOTTEN_WAIT_MS = (5 * 60_000, 4 * 3_600_000)
HOST = "https://portail.tiers-payant.example"
REF_APP = HOST + "/app/"
REF_DROITS = HOST + "/app/droits"
REF_ACTES = HOST + "/app/actes"
REF_PAIEMENTS = HOST + "/app/paiements"
STATICS: tuple[tuple[str, int], ...] = (
    ("/static/app.3f9c2e71.js", 284_211),
    ("/static/app.8b1d04c2.css", 48_213),
    ("/static/img/logo-portail.svg", 5_120),
    ("/static/fonts/marianne-regular.woff2", 42_110),
)
#: request_time strings, index = milliseconds.
RT: tuple[str, ...] = tuple(f"{i / 1000:.3f}" for i in range(6000))

A_LOGIN, A_LOGOUT, A_READ, A_CLAIM, A_CLAIMS = (
    "auth.login",
    "auth.logout",
    "beneficiary.read",
    "claim.create",
    "claim.list",
)
A_PAYMENTS, A_PAGE, A_STATIC = "payment.list", "page", "static"
RIGHTS_PREFIX = "/api/v1/beneficiaires/"


@dataclass(frozen=True, slots=True)
class Day:
    """One local (Europe/Paris) calendar day of the simulation."""

    index: int
    date: date
    #: Epoch milliseconds of local midnight, using the day's noon UTC offset (so opening
    #: hours map exactly even on daylight-saving days, which change at night).
    base_ms: int

    @property
    def weekday(self) -> int:
        return self.date.weekday()


#: Injected reads for (account index, day index): (population index, attack tag).
Injections = dict[tuple[int, int], list[tuple[int, int]]]


def day_volume(acc: Account, day: Day) -> float:
    """Expected rights checks for ``acc`` on ``day`` (0 when closed)."""
    kind, rng, wd = acc.kind, acc.rng, day.weekday
    if rng.random() < 0.04:  # holidays, sick leave, training day
        return 0.0
    if wd < 5:
        return acc.base_volume * WEEKDAY_FACTOR[wd]
    factor, p_open = kind.saturday if wd == 5 else kind.sunday
    if rng.random() >= p_open:
        return 0.0
    return acc.base_volume * factor


_WEIGHTS_CACHE: dict[tuple[str, int], list[float]] = {}


def _cum_weights(acc: Account, day_type: int) -> list[float]:
    key = (acc.kind.code, day_type)
    cw = _WEIGHTS_CACHE.get(key)
    if cw is None:
        k = acc.kind
        hours = (k.weekday_hours, k.saturday_hours, k.sunday_hours)[day_type]
        cw = _WEIGHTS_CACHE[key] = minute_weights(hours)
    return cw


def account_day(
    acc: Account,
    day: Day,
    pop: Population,
    injected: list[tuple[int, int]] | None = None,
    *,
    forgotten_share: float,
) -> list[Req]:
    """All requests of ``acc`` on ``day`` (unsorted; the engine sorts the whole day), with
    ``forgotten_share`` of its sessions starting with a forgotten password."""
    rng = acc.rng
    rand = rng.random
    volume = day_volume(acc, day)
    if volume <= 0.0 and not injected:
        return []
    volume = max(volume, 3.0) if injected else volume
    n = int(volume * rng.lognormvariate(0.0, 0.25) + rand())
    if n == 0 and not injected:
        return []
    if acc.nat is None and rand() < 0.03:  # the ISP re-addressed the box (DHCP)
        a, b, _, _ = acc.ip.split(".")
        acc.ip = f"{a}.{b}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    wd = day.weekday
    cw = _cum_weights(acc, 0 if wd < 5 else wd - 4)
    base = day.base_ms
    minutes = rng.choices(range(1440), cum_weights=cw, k=n + len(injected or ()))
    times = sorted(base + m * 60_000 + int(rand() * 60_000) for m in minutes)
    kind = acc.kind
    n_ws = len(acc.workstations)
    new_share, claim_rate = kind.new_patient_share, kind.claim_rate
    panel = acc.panel
    a_lo, a_hi = pop.area_range(acc.area)
    served, served_set = acc.served, acc.served_set
    nirs = pop.nirs
    # Anchors per workstation: (time, kind, payload); kinds 0 check, 1 claims, 2 payments.
    anchors: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_ws)]
    inj = list(injected or ())
    inj_at = set(rng.sample(range(len(times)), len(inj))) if inj else set()
    for j, t in enumerate(times):
        ws = int(rand() * n_ws)
        if j in inj_at:
            who, tag = inj.pop()
            anchors[ws].append((t, 0, who, tag))
            continue
        if rand() < new_share:
            who = a_lo + int(rand() * (a_hi - a_lo)) if rand() < 0.9 else int(rand() * len(pop))
            panel.append(who)
        else:
            who = panel[int(len(panel) * rand() ** 2.2)]
        anchors[ws].append((t, 0, who, 0))
    if n:
        for _ in range(1 + (rand() < 0.5)):
            anchors[int(rand() * n_ws)].append((times[int(rand() * len(times))] + 5000, 1, 0, 0))
        if kind.code == "PH" or rand() < 0.3:
            anchors[int(rand() * n_ws)].append((times[int(rand() * len(times))] + 7000, 2, 0, 0))
    out: list[Req] = []
    append = out.append
    name, org, iso = acc.name, acc.organization_id, day.date.isoformat()
    month_ago = date.fromordinal(day.date.toordinal() - 30).isoformat()
    for ws_i, items in enumerate(anchors):
        if not items:
            continue
        items.sort()
        station = acc.workstations[ws_i]
        ua = station.user_agent
        ip = acc.current_ip
        last = -(10**15)
        sid = "-"
        first_session = True
        for t, what, who, tag in items:
            if t - last > SESSION_IDLE_MS:
                if sid != "-" and rand() < 0.3:
                    append(
                        (
                            last + 20_000 + int(rand() * 90_000),
                            ip,
                            name,
                            "POST",
                            "/auth/logout",
                            "",
                            204,
                            0,
                            REF_APP,
                            ua,
                            RT[8 + int(rand() * 20)],
                            sid,
                            org,
                            A_LOGOUT,
                            0,
                            "",
                        )
                    )
                if station.mobile:
                    ip = random_ip(rng, MOBILE_PREFIXES)
                sid = f"{rng.getrandbits(128):032x}"
                tl = _session_start(
                    append, rng, t, ip, name, org, ua, sid, station.browser, first_session
                )
                if acc.slips.random() < forgotten_share:
                    floor = max(day.base_ms, last + AFTER_LAST_MS)
                    _forgotten_password(
                        append, acc.slips, tl, floor, (ip, name, org, ua), station.browser
                    )
                first_session = False
            last = t
            if what == 0:
                if tag == 0 and rand() < 0.004:  # card not yet registered: unknown id
                    nir, status, size = pop.unknown_nir(rng), 404, 162
                else:
                    nir, status, size = nirs[who], 200, 1650 + int(rand() * 900)
                append(
                    (
                        t,
                        ip,
                        name,
                        "GET",
                        RIGHTS_PREFIX + nir + "/droits",
                        "",
                        status,
                        size,
                        REF_DROITS,
                        ua,
                        RT[25 + int(240 * rand() ** 2)],
                        sid,
                        org,
                        A_READ,
                        tag,
                        nir,
                    )
                )
                if status == 200 and tag == 0:
                    if served is not None and who not in served_set:
                        served_set.add(who)
                        served.append(who)
                    if rand() < claim_rate:
                        tc = t + 20_000 + int(420_000 * rand() ** 2)
                        append(
                            (
                                tc,
                                ip,
                                name,
                                "POST",
                                "/api/v1/actes",
                                "",
                                201,
                                280 + int(rand() * 60),
                                REF_ACTES,
                                ua,
                                RT[40 + int(300 * rand() ** 2)],
                                sid,
                                org,
                                A_CLAIM,
                                0,
                                "",
                            )
                        )
                    if rand() < 0.1:
                        append(
                            (
                                t + 30_000 + int(rand() * 60_000),
                                ip,
                                name,
                                "GET",
                                "/api/v1/notifications",
                                "",
                                200,
                                120 + int(rand() * 900),
                                REF_APP,
                                ua,
                                RT[6 + int(rand() * 30)],
                                sid,
                                org,
                                A_PAGE,
                                0,
                                "",
                            )
                        )
            elif what == 1:
                append(
                    (
                        t,
                        ip,
                        name,
                        "GET",
                        "/api/v1/actes",
                        f"date={iso}&page=1",
                        200,
                        2000 + int(rand() * 12_000),
                        REF_ACTES,
                        ua,
                        RT[60 + int(rand() * 400)],
                        sid,
                        org,
                        A_CLAIMS,
                        0,
                        "",
                    )
                )
            else:
                append(
                    (
                        t,
                        ip,
                        name,
                        "GET",
                        "/api/v1/paiements",
                        f"du={month_ago}&au={iso}",
                        200,
                        1500 + int(rand() * 20_000),
                        REF_PAIEMENTS,
                        ua,
                        RT[80 + int(rand() * 600)],
                        sid,
                        org,
                        A_PAYMENTS,
                        0,
                        "",
                    )
                )
    return out


def _session_start(
    append: Callable[[Req], object],
    rng: random.Random,
    t: int,
    ip: str,
    name: str,
    org: str,
    ua: str,
    sid: str,
    browser: bool,
    first_of_day: bool,
) -> int:
    """Requests that open a session, placed in the seconds before anchor time ``t``; the
    login's time."""
    add = append  # list.append of the day's output
    rand = rng.random
    tl = t - 8_000 - int(rand() * 25_000)  # login time
    if browser:
        ta = tl - 6_000 - int(rand() * 20_000)
        add(
            (
                ta,
                ip,
                "-",
                "GET",
                "/app/",
                "",
                200,
                2481,
                "-",
                ua,
                RT[3 + int(rand() * 10)],
                "-",
                "",
                A_PAGE,
                0,
                "",
            )
        )
        # The day's first load fetches every asset; later ones revalidate the bundle only.
        for k, (path, size) in enumerate(STATICS if first_of_day else STATICS[:1]):
            status, nbytes = (200, size) if first_of_day else (304, 0)
            add(
                (
                    ta + 150 + 40 * k,
                    ip,
                    "-",
                    "GET",
                    path,
                    "",
                    status,
                    nbytes,
                    REF_APP,
                    ua,
                    RT[1 + int(rand() * 30)],
                    "-",
                    "",
                    A_STATIC,
                    0,
                    "",
                )
            )
    if rand() < 0.04:  # mistyped password, then the right one
        add(
            _failed_login(
                tl - 4_000 - int(rand() * 9_000), ip, name, org, ua, browser, 60 + int(rand() * 120)
            )
        )
    add(
        (
            tl,
            ip,
            name,
            "POST",
            "/auth/login",
            "",
            200,
            412,
            REF_APP if browser else "-",
            ua,
            RT[70 + int(rand() * 150)],
            "-",
            org,
            A_LOGIN,
            0,
            "",
        )
    )
    add(
        (
            tl + 300,
            ip,
            name,
            "GET",
            "/api/v1/me",
            "",
            200,
            655,
            REF_APP if browser else "-",
            ua,
            RT[9 + int(rand() * 20)],
            sid,
            org,
            A_PAGE,
            0,
            "",
        )
    )
    if browser:
        add(
            (
                tl + 420,
                ip,
                name,
                "GET",
                "/api/v1/notifications",
                "",
                200,
                120 + int(rand() * 900),
                REF_APP,
                ua,
                RT[6 + int(rand() * 30)],
                sid,
                org,
                A_PAGE,
                0,
                "",
            )
        )
    return tl


def _failed_login(t: int, ip: str, name: str, org: str, ua: str, browser: bool, ms: int) -> Req:
    """A login refused (401) at ``t``, answered in ``ms`` milliseconds."""
    ref = REF_APP if browser else "-"
    return (
        t,
        ip,
        name,
        "POST",
        "/auth/login",
        "",
        401,
        96,
        ref,
        ua,
        RT[ms],
        "-",
        org,
        A_LOGIN,
        0,
        "",
    )


def _forgotten_password(
    add: Callable[[Req], object],
    rng: random.Random,
    tl: int,
    floor: int,
    who: tuple[str, str, str, str],
    browser: bool,
) -> None:
    """A user who no longer knows their password: two to four refused attempts seconds apart,
    then nothing until the login at ``tl``, five minutes to four hours later (a reset by mail,
    a call to the help desk, the password found on a note), all after ``floor``."""
    ip, name, org, ua = who
    attempts = rng.choices((2, 3, 4), weights=(50, 35, 15))[0]
    gaps = [5_000 + int(rng.random() * 35_000) for _ in range(attempts - 1)]
    wait = int(
        math.exp(rng.uniform(math.log(FORGOTTEN_WAIT_MS[0]), math.log(FORGOTTEN_WAIT_MS[1])))
    )
    if tl - floor <= FORGOTTEN_WAIT_MS[0] + sum(gaps):
        return  # a login in the day's first minutes: no room for the attempts
    t = max(floor + 1, tl - wait - sum(gaps))
    for gap in [0, *gaps]:
        t += gap
        add(_failed_login(t, ip, name, org, ua, browser, 60 + int(rng.random() * 120)))
