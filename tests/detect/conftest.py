"""Shared fixtures of the detection tests: small simulated portal logs (one with a mass harvest,
one with every scenario)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rempart.sim import ScenarioSpec, SimOptions, SimResult, simulate


@pytest.fixture(scope="session")
def harvest_log(tmp_path_factory: pytest.TempPathFactory) -> SimResult:
    out = tmp_path_factory.mktemp("sim")
    opts = SimOptions(
        seed=3,
        accounts=20,
        days=3,
        scenarios=(ScenarioSpec.parse("mass_harvest:count=2000,rate=300"),),
    )
    return simulate(opts, out, events=False)


@pytest.fixture(scope="session")
def all_scenarios_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten days of 40 accounts with every attack scenario (the default scenario set)."""
    out = tmp_path_factory.mktemp("all-scenarios")
    simulate(SimOptions(seed=5, accounts=40, days=10), out, events=False)
    return out / "access.log"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    cfg = tmp_path / "rempart.yaml"
    cfg.write_text(
        f"keys:\n  token_key_file: {tmp_path}/token.key\n"
        f"state:\n  url: sqlite:///{tmp_path}/state.db\n"
        f"  quarantine_dir: {tmp_path}/quarantine\n  archive_dir: {tmp_path}/archive\n"
    )
    return cfg
