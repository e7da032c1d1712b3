"""Portal-traffic simulator with labelled attacks: Rempart's demo, test data and benchmark input.

    from rempart.sim import SimOptions, simulate, Population
    result = simulate(SimOptions(seed=1, accounts=200, days=7), Path("out"))

See ``docs/simulator.md`` for what it models, the scenarios and the truth.json schema.
"""

from rempart.sim.engine import Simulation
from rempart.sim.nir import is_valid_nir, nir_key
from rempart.sim.options import ScenarioSpec, SimOptions
from rempart.sim.output import SimResult, iter_lines, iter_requests, simulate
from rempart.sim.population import Beneficiary, Population
from rempart.sim.render import SimRequest
from rempart.sim.scenarios import PARAM_RANGES, SCENARIOS, SimOptionsError

__all__ = [
    "PARAM_RANGES",
    "SCENARIOS",
    "Beneficiary",
    "Population",
    "ScenarioSpec",
    "SimOptions",
    "SimOptionsError",
    "SimRequest",
    "SimResult",
    "Simulation",
    "is_valid_nir",
    "iter_lines",
    "iter_requests",
    "nir_key",
    "simulate",
]
