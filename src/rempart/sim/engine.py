"""The simulation loop: day after day, every account's traffic and the attacks, in time order.

``Simulation(opts).batches()`` yields one sorted list of requests per simulated day (requests
that spill past midnight are carried to the next day), so files are written and lines streamed
without holding the whole run in memory. ``Simulation.truth()`` is the ground truth of what was
yielded so far.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from itertools import compress
from operator import itemgetter
from typing import Any

from rempart.sim.attacks import GENERATORS, Context, resolve_attacks
from rempart.sim.directory import LEGIT_PREFIXES, NatGroup, build_directory, random_ip
from rempart.sim.legit import Day, Injections, account_day
from rempart.sim.options import SimOptions
from rempart.sim.population import Population
from rempart.sim.render import PARIS, Req

_TS = itemgetter(0)
_USER = itemgetter(2)
_STATUS = itemgetter(6)
_ACTION = itemgetter(13)
_TAG = itemgetter(14)
_NIR = itemgetter(15)
_SETTLE_MS = 2 * 3_600_000


def local_iso(ts_ms: int) -> str:
    """ISO 8601 in Europe/Paris with milliseconds, as in events.jsonl."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=PARIS).isoformat(timespec="milliseconds")


def make_days(opts: SimOptions) -> tuple[list[Day], list[int]]:
    """The simulated days and their true local-midnight boundaries (epoch ms, one more)."""
    days: list[Day] = []
    bounds: list[int] = []
    for i in range(opts.days + 1):
        d = opts.start + timedelta(days=i)
        bounds.append(int(datetime.combine(d, time(0), PARIS).timestamp() * 1000))
        if i < opts.days:
            offset = datetime.combine(d, time(12), PARIS).utcoffset() or timedelta(0)
            midnight_utc = datetime.combine(d, time(0), UTC).timestamp()
            days.append(Day(i, d, int((midnight_utc - offset.total_seconds()) * 1000)))
    return days, bounds


class Simulation:
    """One run: population, directory, attacks, and the day-by-day request stream."""

    def __init__(self, opts: SimOptions) -> None:
        self.opts = opts
        self.population = Population(opts.seed, opts.population_size)
        self.accounts = build_directory(opts.seed, opts.accounts, self.population)
        self.days, self.bounds = make_days(opts)
        self.attacks = resolve_attacks(opts.seed, opts.resolved_params(), self.accounts, self.days)
        self.injections: Injections = {}
        self.context = Context(
            self.population, self.days, self.injections, frozenset(a.name for a in self.accounts)
        )
        self._nats: list[NatGroup] = []
        for acc in self.accounts:
            nat = acc.nat
            if nat is not None and nat.dynamic and all(nat is not n for n in self._nats):
                self._nats.append(nat)
        self._truth = TruthBuilder(self)

    def batches(self) -> Iterator[list[Req]]:
        """Sorted requests in chunks of about one day (the last chunk ends the period).

        After generating day ``i``, everything before ``bounds[i] - 2 h`` is final: no later day
        can produce an earlier request (days start at 00:05 local, an hour off at most on
        daylight-saving days, sessions open a minute before their first request).
        """
        pool: list[Req] = []
        pending: list[Req] = []
        nat_rng = random.Random(self.opts.seed * 31 + 7)
        for i, day in enumerate(self.days):
            starting = [a for a in self.attacks if a.start_day == i]
            for attack in starting:
                pending.extend(GENERATORS[attack.scenario](attack, self.context))
            if starting:
                pending.sort(key=_TS)
            for nat in self._nats:
                if nat_rng.random() < 0.02:
                    nat.ip = random_ip(nat_rng, LEGIT_PREFIXES)
            for acc in self.accounts:
                pool.extend(
                    account_day(
                        acc,
                        day,
                        self.population,
                        self.injections.pop((acc.index, i), None),
                        forgotten_share=self.opts.forgotten_share,
                    )
                )
            if i > 0:
                yield self._emit(pool, pending, self.bounds[i] - _SETTLE_MS)
        yield self._emit(pool, pending, self.bounds[-1])

    def _emit(self, pool: list[Req], pending: list[Req], cutoff: int) -> list[Req]:
        k = bisect.bisect_left(pending, cutoff, key=_TS)
        pool.extend(pending[:k])
        del pending[:k]
        pool.sort(key=_TS)
        k = bisect.bisect_left(pool, cutoff, key=_TS)
        out = pool[:k]
        del pool[:k]
        self._truth.observe(out)
        return out

    def truth(self) -> dict[str, Any]:
        return self._truth.to_dict()


class _AttackTruth:
    __slots__ = (
        "compromised",
        "exposed",
        "first_line",
        "first_ts",
        "ips",
        "last_ts",
        "lines",
        "timeline",
        "uas",
        "users",
    )

    def __init__(self) -> None:
        self.first_line: int | None = None
        self.first_ts = 0
        self.last_ts = 0
        self.lines = 0
        self.users: dict[str, None] = {}
        self.ips: dict[str, None] = {}
        self.uas: dict[str, None] = {}
        self.compromised: dict[str, None] = {}
        self.exposed: set[str] = set()
        self.timeline: list[tuple[int, str]] = []


class TruthBuilder:
    """Counts what was emitted; the ground truth is derived from the lines themselves."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.lines = 0
        self.actions: Counter[str] = Counter()
        self.users: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.read_ids: set[str] = set()
        self.attacks = [_AttackTruth() for _ in sim.attacks]

    def observe(self, batch: list[Req]) -> None:
        """Count a batch (C-level iteration only: this runs over every line)."""
        self.actions.update(map(_ACTION, batch))
        self.statuses.update(map(_STATUS, batch))
        self.users.update(map(_USER, batch))
        self.read_ids.update(filter(None, map(_NIR, batch)))
        base = self.lines
        for i in compress(range(len(batch)), map(_TAG, batch)):
            r = batch[i]
            self._attack_line(self.attacks[r[14] - 1], base + i + 1, r)
        self.lines += len(batch)

    @staticmethod
    def _attack_line(at: _AttackTruth, line: int, r: Req) -> None:
        if at.first_line is None:
            at.first_line, at.first_ts = line, r[0]
        at.last_ts = r[0]
        at.lines += 1
        at.users[r[2]] = None
        at.ips[r[1]] = None
        at.uas[r[9]] = None
        if r[13] == "auth.login" and r[6] == 200:
            at.compromised[r[2]] = None
        if r[15] and r[6] == 200 and r[15] not in at.exposed:
            at.exposed.add(r[15])
            at.timeline.append((r[0], r[15]))

    def _outcomes(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for status, n in self.statuses.items():
            out["success" if status < 400 else "failure"] += n
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        sim = self.sim
        attacks = []
        for attack, at in zip(sim.attacks, self.attacks, strict=True):
            attacks.append(
                {
                    "id": attack.id,
                    "scenario": attack.scenario,
                    "params": attack.params,
                    "accounts": sorted(at.users),
                    "ips": sorted(at.ips),
                    "user_agents": sorted(at.uas),
                    "compromised": sorted(at.compromised),
                    "start": local_iso(at.first_ts) if at.first_line else None,
                    "end": local_iso(at.last_ts) if at.first_line else None,
                    "first_line": at.first_line,
                    "lines": at.lines,
                    "exposed": sorted(at.exposed),
                    "exposed_timeline": [[local_iso(t), nir] for t, nir in at.timeline],
                }
            )
        return {
            "seed": sim.opts.seed,
            "options": sim.opts.to_dict(),
            "start": local_iso(sim.bounds[0]),
            "end": local_iso(sim.bounds[-1]),
            "totals": {
                "lines": self.lines,
                "actions": dict(sorted(self.actions.items())),
                "outcomes": self._outcomes(),
                "accounts": len(self.users - {"-"}),
                "directory_accounts": len(sim.accounts),
                # An id is answered 200 exactly when the person exists in the population.
                "beneficiaries_read": sum(1 for n in self.read_ids if n in sim.population),
                "beneficiaries_requested": len(self.read_ids),
                "attack_lines": sum(at.lines for at in self.attacks),
            },
            "attacks": attacks,
        }
