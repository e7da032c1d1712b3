"""Practitioner accounts of the simulated portal: names, organisations, networks, browsers.

Each ``Account`` also carries its mutable simulation state (current IP, patient panel, its own
random generator), so that day after day the same pharmacy keeps its patients, workstations and
habits.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

from rempart.sim.kinds import KINDS, KindProfile
from rempart.sim.population import Population

#: Residential/business ISP prefixes of legitimate practitioners (first two octets).
LEGIT_PREFIXES: tuple[tuple[int, int], ...] = (
    (90, 12), (90, 63), (86, 245), (92, 154), (82, 64), (82, 125), (78, 192), (88, 170),
    (109, 14), (109, 220), (176, 161), (176, 182), (81, 250), (83, 202), (80, 12), (77, 136),
)  # fmt: skip
#: Mobile carrier CGNAT prefixes (nurses on their rounds).
MOBILE_PREFIXES: tuple[tuple[int, int], ...] = ((92, 184), (80, 215), (37, 171), (89, 80))

_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
BROWSER_UAS: tuple[str, ...] = (
    _WIN + _CHROME.format(v=131),
    _WIN + _CHROME.format(v=130),
    _WIN + _CHROME.format(v=129),
    _WIN + _CHROME.format(v=131) + " Edg/131.0.0.0",
    _WIN + _CHROME.format(v=130) + " Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) " + _CHROME.format(v=109),
    _MAC + "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    _MAC + _CHROME.format(v=131),
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
)
#: Workstation weights: old Windows Chrome/Edge dominate practices.
_BROWSER_WEIGHTS = (14, 12, 6, 10, 6, 5, 3, 2, 3, 2, 1, 1)
MOBILE_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
#: Mixed into an account's seed for its ``slips`` stream.
SLIPS_SALT = 0x5F1E_2D3C_4B5A_6978
#: Pharmacy management software calling the API directly (no /app/ pages).
SOFTWARE_UAS: tuple[str, ...] = ("LGPI/2.31 (Pharmagest)", "Winpharma/8.4.2", "SmartRx/5.12")


def finess_like(rng: random.Random, department: int) -> str:
    """A FINESS-like 9-digit organisation id: department, 6 digits, Luhn key."""
    body = f"{department:02d}{rng.randint(0, 999_999):06d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{body}{(10 - total % 10) % 10}"


def random_ip(rng: random.Random, prefixes: tuple[tuple[int, int], ...]) -> str:
    a, b = rng.choice(prefixes)
    return f"{a}.{b}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


@dataclass(slots=True)
class Workstation:
    user_agent: str
    browser: bool = True
    mobile: bool = False


@dataclass(slots=True)
class Account:
    index: int
    name: str
    kind: KindProfile
    organization_id: str
    area: int
    #: Rights checks on an ordinary weekday.
    base_volume: float
    workstations: list[Workstation]
    ip: str
    #: NAT group shared with other accounts (same IP, changes together), or None.
    nat: NatGroup | None
    #: Regular patients (population indices), most frequent first; grows with new patients.
    #: A compact int array: millions of entries in big runs.
    panel: array[int]
    rng: random.Random
    #: A second stream for the users' slips (forgotten passwords): drawing from it leaves the
    #: rest of the traffic, drawn from ``rng``, as it was.
    slips: random.Random
    #: When tracked (attack targets), population indices it read successfully, in order.
    served: list[int] | None = None
    served_set: set[int] = field(default_factory=set)

    @property
    def current_ip(self) -> str:
        return self.nat.ip if self.nat is not None else self.ip


@dataclass(slots=True)
class NatGroup:
    ip: str
    #: Hospital NATs are fixed; a group practice's box may be re-addressed by its ISP.
    dynamic: bool = False


def build_directory(seed: int, n_accounts: int, population: Population) -> list[Account]:
    """Deterministic accounts for ``seed``: kinds by share, organisations, NATs, panels."""
    rng = random.Random(seed * 1_000_003 + 101)
    codes = list(KINDS)
    counts = {c: int(n_accounts * KINDS[c].share) for c in codes}
    rest = n_accounts - sum(counts.values())
    for c in ("PH", "MD", "IN", "KI", "DE", "OP", "LB", "HP", "CS")[:rest]:
        counts[c] += 1
    while sum(counts.values()) > n_accounts:  # tiny directories
        counts[max(codes, key=lambda c: counts[c])] -= 1
    accounts: list[Account] = []
    n_areas = population.n_areas
    for code in codes:
        kind = KINDS[code]
        n = counts[code]
        if n == 0:
            continue
        width = max(4, len(str(n * 3)))
        numbers = sorted(rng.sample(range(1, 10**width), n))
        group_left = 0
        org = ""
        nat: NatGroup | None = None
        area = 0
        for number in numbers:
            if kind.group is not None and group_left == 0:
                group_left = rng.randint(*kind.group)
                area = rng.randrange(n_areas)
                org = finess_like(rng, rng.randint(1, 95))
                nat = NatGroup(random_ip(rng, LEGIT_PREFIXES))
            if kind.group is not None:
                group_left -= 1
                acc_area, acc_org, acc_nat = area, org, nat
            else:
                acc_area = rng.randrange(n_areas)
                acc_org = finess_like(rng, rng.randint(1, 95))
                acc_nat = None
            accounts.append(
                _new_account(rng, len(accounts), f"{code}{number:0{width}d}", kind, acc_org,
                             acc_area, acc_nat, population)
            )  # fmt: skip
    _group_practices(rng, accounts)
    return accounts


def _new_account(
    rng: random.Random,
    index: int,
    name: str,
    kind: KindProfile,
    org: str,
    area: int,
    nat: NatGroup | None,
    population: Population,
) -> Account:
    lo, hi = kind.checks
    base = lo * (hi / lo) ** rng.random()  # log-uniform: many small, some big
    n_ws = rng.randint(*kind.workstations)
    stations = [
        Workstation(rng.choices(BROWSER_UAS, weights=_BROWSER_WEIGHTS)[0]) for _ in range(n_ws)
    ]
    if kind.code == "PH" and rng.random() < 0.35:
        stations.append(Workstation(rng.choice(SOFTWARE_UAS), browser=False))
    if kind.code == "IN":
        stations.append(Workstation(MOBILE_UA, mobile=True))
    a_lo, a_hi = population.area_range(area)
    panel_size = min(rng.randint(*kind.panel), a_hi - a_lo)
    panel = _spread(rng, a_lo, a_hi, panel_size)
    ip = random_ip(rng, LEGIT_PREFIXES)
    seed = rng.getrandbits(64)
    return Account(
        index=index,
        name=name,
        kind=kind,
        organization_id=org,
        area=area,
        base_volume=base,
        workstations=stations,
        ip=ip,
        nat=nat,
        panel=panel,
        rng=random.Random(seed),
        slips=random.Random(seed ^ SLIPS_SALT),
    )


def _spread(rng: random.Random, lo: int, hi: int, k: int) -> array[int]:
    """``k`` distinct indices of ``[lo, hi)`` in a pseudo-random order (a coprime stride:
    as good as ``rng.sample`` here and a hundred times cheaper for big panels)."""
    n = hi - lo
    stride = rng.randrange(1, n) if n > 1 else 1
    while gcd(stride, n) != 1:
        stride += 1
    first = rng.randrange(n)
    return array("i", [lo + (first + j * stride) % n for j in range(k)])


def _group_practices(rng: random.Random, accounts: list[Account]) -> None:
    """Put some independent practitioners of one area behind one box (maison de santé)."""
    liberal = [a for a in accounts if a.kind.group is None and a.kind.code != "PH"]
    rng.shuffle(liberal)
    i = 0
    while i < len(liberal) * 0.15:
        size = rng.randint(2, 5)
        members = liberal[i : i + size]
        nat = NatGroup(random_ip(rng, LEGIT_PREFIXES), dynamic=True)
        for member in members:
            member.nat = nat
        i += size


def directory_csv(accounts: list[Account]) -> str:
    """``account,kind,organization_id`` (kind is the peer-group label, e.g. pharmacie)."""
    rows = ["account,kind,organization_id"]
    rows.extend(f"{a.name},{a.kind.label},{a.organization_id}" for a in accounts)
    return "\n".join(rows) + "\n"


#: Visits a regular patient is taken to have made before the simulated period, each billed
#: through tiers payant with the account kind's claim rate: the patient is in the operator's
#: claims history with probability ``1 - (1 - claim_rate) ** PAST_VISITS`` (a pharmacy's
#: 0.9995, a hospital's 0.94).
PAST_VISITS = 3


def write_care_csv(path: Path, accounts: list[Account], population: Population, seed: int) -> int:
    """The operator's claims history before the period: ``account,beneficiary`` rows of the
    regular patients each account billed (see ``PAST_VISITS``), from the panels as they are
    when called (before any day is generated). Returns the rows written. Its own random stream:
    the traffic is the same with or without it."""
    rng = random.Random(seed * 104_729 + 11)
    rand = rng.random
    nirs = population.nirs
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("account,beneficiary\n")
        for acc in accounts:
            billed = 1.0 - (1.0 - acc.kind.claim_rate) ** PAST_VISITS
            name = acc.name
            lines = [f"{name},{nirs[who]}\n" for who in acc.panel if rand() < billed]
            fh.writelines(lines)
            rows += len(lines)
    return rows
