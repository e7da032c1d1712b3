"""How well could *any* detector find the eval's insider? An upper bound from the simulator.

``rempart eval`` misses the insider on some seeds (docs/detection.md, "The insider"). This
script asks whether a better rule could find it, by giving a detector everything the simulator
knows and the portal's log does not:

- which reads are of a patient new to the account (the simulator's own "new patient" draw,
  not Rempart's "never seen since deployment"), and which of them no claim followed;
- where every patient lives (the simulator's areas: legitimate new patients live in the
  account's area 90% of the time, the insider's strangers 70%);
- each account's expected number of such reads per day, from its actual day's volume;
- the insider's exact rate and the length of its episode (the alternative hypothesis).

With all that, the most powerful test of "this account added the insider's reads over these
days" is the Poisson likelihood ratio (Neyman-Pearson). The script scores every account on
every window of the insider's length within the attack period, then ranks the insider among
the legitimate accounts of its run. The false-positive target (1 account per 1,000
account-days) allows ``budget`` = accounts x days / 1,000 legitimate accounts per run (2.8 for
200 accounts over 14 days): the insider is findable within the target only if fewer legitimate
accounts score at least as high as it does.

Two oracles are reported: ``counts`` (new unclaimed reads, what TP-INS-004 counts, with the
true rates) and ``areas`` (the same, split into the account's area and elsewhere).

Run: ``.venv/bin/python bench/insider_oracle.py --seed 1 ... --seed 10 [--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from rempart.sim import SimOptions
from rempart.sim.attacks import GENERATORS
from rempart.sim.engine import Simulation
from rempart.sim.legit import A_CLAIM, A_READ, account_day
from rempart.sim.population import AREA_SIZE

#: Share of legitimate new patients drawn from the account's area (``legit.account_day``) and
#: of the insider's strangers (``attacks.insider``); the rest come from anywhere.
LEGIT_IN_AREA = 0.9
INSIDER_IN_AREA = 0.7
# Request tuple fields (``rempart.sim.render``).
_STATUS, _ACTION, _TAG, _NIR, _SID = 6, 13, 14, 15, 11


@dataclass
class AccountDays:
    """Per day: new unclaimed reads in the account's area and elsewhere, and the expected
    number of each from the legitimate traffic."""

    name: str
    kind: str
    new_in: list[int]
    new_out: list[int]
    mu_in: list[float]
    mu_out: list[float]


def _eval_options(seed: int, accounts: int, days: int, learn_days: int) -> SimOptions:
    """The same simulation as ``rempart eval`` (``evaluate.evaluate_seed``)."""
    base = SimOptions().start
    drawn = SimOptions.randomised(
        seed, accounts=accounts, days=days, start=base + timedelta(days=learn_days)
    )
    return replace(drawn, start=base, days=learn_days + days)


def collect(opts: SimOptions) -> tuple[Simulation, dict[str, AccountDays]]:
    """Replay the simulator's day loop, looking at each account's day before it is mixed."""
    sim = Simulation(opts)
    pop = sim.population
    index = {nir: i for i, nir in enumerate(pop.nirs)}
    n_days = len(sim.days)
    per = {
        a.name: AccountDays(
            a.name, a.kind.code, [0] * n_days, [0] * n_days, [0.0] * n_days, [0.0] * n_days
        )
        for a in sim.accounts
    }
    size = pop.size
    for i, day in enumerate(sim.days):
        for attack in (a for a in sim.attacks if a.start_day == i):
            GENERATORS[attack.scenario](attack, sim.context)  # registers the insider's reads
        for acc in sim.accounts:
            known = set(acc.panel)
            lo, hi = pop.area_range(acc.area)
            k_in = sum(1 for w in known if lo <= w < hi)
            k_out = len(known) - k_in
            reqs = account_day(
                acc,
                day,
                pop,
                sim.injections.pop((acc.index, i), None),
                forgotten_share=sim.opts.forgotten_share,
            )
            row = per[acc.name]
            legit = 0
            for j, r in enumerate(reqs):
                if r[_ACTION] != A_READ or r[_STATUS] != 200:
                    continue
                who = index[str(r[_NIR])]
                if r[_TAG] == 0:
                    legit += 1
                    nxt = reqs[j + 1] if j + 1 < len(reqs) else None
                    claimed = nxt is not None and nxt[_ACTION] == A_CLAIM and nxt[_SID] == r[_SID]
                    if who in known or claimed:
                        continue
                home = lo <= who < hi
                (row.new_in if home else row.new_out)[i] += 1
            # Expected strangers left without a claim: a new-patient draw is in the area with
            # probability LEGIT_IN_AREA (plus a random pick landing there), and a stranger
            # unless already on the account's books.
            area = hi - lo
            new = legit * acc.kind.new_patient_share * (1 - acc.kind.claim_rate)
            p_in = LEGIT_IN_AREA + (1 - LEGIT_IN_AREA) * area / size
            row.mu_in[i] = new * p_in * (1 - k_in / area)
            row.mu_out[i] = new * (1 - p_in) * (1 - k_out / max(size - area, 1))
    return sim, per


def _log_lr(n: int, mu: float, extra: float) -> float:
    """Poisson log likelihood ratio of rate ``mu + extra`` against ``mu`` for a count ``n``."""
    mu = max(mu, 1e-4)
    return n * math.log1p(extra / mu) - extra if extra > 0 else 0.0


def score(row: AccountDays, first: int, length: int, rate: float, out: float, split: bool) -> float:
    """Best log likelihood ratio over windows of ``length`` days starting at ``first`` or later:
    the account's expected strangers without a claim against the same plus ``rate`` a day, a
    share ``out`` of them outside the account's area (told apart when ``split``)."""
    daily = []
    for d in range(len(row.mu_in)):
        if split:
            daily.append(
                _log_lr(row.new_in[d], row.mu_in[d], rate * (1 - out))
                + _log_lr(row.new_out[d], row.mu_out[d], rate * out)
            )
        else:
            daily.append(
                _log_lr(row.new_in[d] + row.new_out[d], row.mu_in[d] + row.mu_out[d], rate)
            )
    return max(sum(daily[s : s + length]) for s in range(first, len(daily) - length + 1))


def run_seed(seed: int, accounts: int, days: int, learn_days: int) -> dict[str, Any]:
    """The seed's insider and, per oracle, its score, how many legitimate accounts of the run
    score at least as high, and whether that is within the false-positive target."""
    opts = _eval_options(seed, accounts, days, learn_days)
    # Only the account's own day is replayed (the attacks' requests are not), so every other
    # account's counts are legitimate, harvested accounts included.
    sim, per = collect(opts)
    insider = next(a for a in sim.attacks if a.scenario == "insider")
    who = insider.targets[0].name
    n_days = len(sim.days)
    length = min(int(insider.params["days"]), n_days - insider.start_day)
    rate = int(insider.params["count"]) / length
    # The insider's strangers outside its area: a random pick that does not land in it.
    out = (1 - INSIDER_IN_AREA) * (1 - AREA_SIZE / sim.population.size)
    budget = accounts * n_days / 1000
    result: dict[str, Any] = {
        "seed": seed,
        "account": who,
        "kind": insider.targets[0].kind.code,
        "records": int(insider.params["count"]),
        "days": length,
        "budget": budget,
    }
    for name, split in (("counts", False), ("areas", True)):
        mine = score(per[who], learn_days, length, rate, out, split)
        above = sum(
            1
            for a, row in per.items()
            if a != who and score(row, learn_days, length, rate, out, split) >= mine
        )
        result[name] = {
            "log_lr": round(mine, 2),
            "legit_at_least_as_high": above,
            "findable": above < budget,
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seed", type=int, action="append", required=True)
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--learn-days", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [run_seed(s, args.accounts, args.days, args.learn_days) for s in args.seed]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("seed  insider       records/days  legit at least as high: counts  areas")
    for r in rows:
        c, a = r["counts"], r["areas"]
        print(
            f"{r['seed']:>4}  {r['account']:<8} {r['kind']}   {r['records']:>3} / {r['days']}"
            f"      {c['legit_at_least_as_high']:>20} ({'yes' if c['findable'] else 'no'})"
            f"  {a['legit_at_least_as_high']:>4} ({'yes' if a['findable'] else 'no'})"
        )
    counts = sum(1 for r in rows if r["counts"]["findable"])
    areas = sum(1 for r in rows if r["areas"]["findable"])
    print(
        f"findable within the false-positive target ({rows[0]['budget']:.1f} legitimate "
        f"accounts a run): counts {counts}/{len(rows)}, areas {areas}/{len(rows)}"
    )


if __name__ == "__main__":
    main()
