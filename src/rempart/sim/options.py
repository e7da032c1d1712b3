"""What to simulate: ``SimOptions`` and ``ScenarioSpec``.

``SimOptions`` is frozen and JSON-friendly (``to_dict``); the same options always give
byte-identical output files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from rempart.sim.scenarios import (
    SCENARIOS,
    SimOptionsError,
    draw_params,
    parse_value,
)

DEFAULT_START = date(2026, 11, 30)  # a Monday


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """One attack to inject: a scenario name and the parameters the user fixed."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise SimOptionsError(f"unknown scenario {self.name!r}", hint=", ".join(SCENARIOS))

    @classmethod
    def parse(cls, text: str) -> ScenarioSpec:
        """``NAME`` or ``NAME:k=v,k=v`` (list values ``+``-separated)."""
        name, _, rest = text.partition(":")
        name = name.strip()
        if name not in SCENARIOS:
            raise SimOptionsError(f"unknown scenario {name!r}", hint=", ".join(SCENARIOS))
        params: list[tuple[str, Any]] = []
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise SimOptionsError(f"parameter {item!r} is not key=value", where=name)
            params.append((key.strip(), parse_value(name, key.strip(), value.strip())))
        return cls(name, tuple(params))

    @property
    def given(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Options of one simulation run.

    ``scenarios=None`` means every scenario once with parameters drawn from the seed;
    ``attacks=False`` means legitimate traffic only.
    """

    seed: int = 1
    accounts: int = 200
    days: int = 7
    start: date = DEFAULT_START
    scenarios: tuple[ScenarioSpec, ...] | None = None
    attacks: bool = True
    #: Size of the insured population (default: 150 per account, at least 20,000).
    population: int | None = None
    #: Share of sessions that start with a forgotten password (refused attempts, then the
    #: login minutes to hours later).
    forgotten_share: float = 0.005

    def __post_init__(self) -> None:
        if self.accounts < 10:
            raise SimOptionsError("at least 10 accounts are needed", where="--accounts")
        if not 1 <= self.days <= 366:
            raise SimOptionsError("days must be between 1 and 366", where="--days")
        if self.population is not None and self.population < 1000:
            raise SimOptionsError("population must be at least 1000", where="--population")
        if not 0.0 <= self.forgotten_share <= 1.0:
            raise SimOptionsError(
                "the share of forgotten passwords must be between 0 and 1",
                where="--forgotten-share",
            )

    @property
    def population_size(self) -> int:
        return self.population or max(20_000, self.accounts * 150)

    def attack_specs(self) -> tuple[ScenarioSpec, ...]:
        if not self.attacks:
            return ()
        if self.scenarios is None:
            return tuple(ScenarioSpec(name) for name in SCENARIOS)
        return self.scenarios

    def resolved_params(self) -> list[tuple[str, dict[str, Any]]]:
        """(scenario, every parameter) per attack, the missing ones drawn from the seed."""
        out = []
        for i, spec in enumerate(self.attack_specs()):
            rng = random.Random(self.seed * 7919 + i * 104_729 + 11)
            params = draw_params(spec.name, rng, start=self.start, days=self.days, given=spec.given)
            out.append((spec.name, params))
        return out

    @classmethod
    def randomised(
        cls,
        seed: int,
        *,
        accounts: int = 300,
        days: int = 7,
        start: date = DEFAULT_START,
        scenarios: tuple[str, ...] = SCENARIOS,
    ) -> SimOptions:
        """Options with every scenario parameter drawn explicitly from ``PARAM_RANGES``.

        Same result as leaving them out (the simulator draws them the same way), but the
        parameters are visible in ``opts.scenarios`` before the run, for evaluation harnesses.
        """
        base = cls(
            seed=seed,
            accounts=accounts,
            days=days,
            start=start,
            scenarios=tuple(ScenarioSpec(s) for s in scenarios),
        )
        specs = tuple(
            ScenarioSpec(name, tuple(sorted(params.items())))
            for name, params in base.resolved_params()
        )
        return cls(seed=seed, accounts=accounts, days=days, start=start, scenarios=specs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "accounts": self.accounts,
            "days": self.days,
            "start": self.start.isoformat(),
            "attacks": self.attacks,
            "population": self.population_size,
            "forgotten_share": self.forgotten_share,
            "scenarios": None
            if self.scenarios is None
            else [{"name": s.name, "params": dict(s.params)} for s in self.scenarios],
        }
