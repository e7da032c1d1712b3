"""Shared small simulations (session-scoped: each is generated once per test run)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rempart.sim import ScenarioSpec, SimOptions, SimResult, simulate

#: The portal's log_format, written independently of the simulator's renderer.
NGINX_RE = re.compile(
    r"^(?P<ip>\d{1,3}(?:\.\d{1,3}){3}) - (?P<user>\S+) "
    r"\[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.1" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)" "(?P<rt>\d+\.\d{3})" "(?P<sid>[^"]*)"$'
)

SMALL_SCENARIOS = (
    "brute_force:attempts=60,rate=120,succeeds=true",
    "password_spraying:n_accounts=20,passwords=2,interval_s=5,round_gap_min=20,success_rate=0.1",
    "stuffing_single_ip:n_accounts=120,rate=300,existing_share=0.4,success_rate=0.05",
    "stuffing_distributed:n_ips=12,n_accounts=80,period_s=90",
    "mass_harvest:count=400,rate=240,served_before=3,hit_rate=0.8",
    "slow_harvest:n_accounts=5,days=2,multiplier=3,served_before=1",
    "insider:count=6,days=2",
)


@dataclass
class Line:
    no: int
    ip: str
    user: str
    time: datetime
    method: str
    path: str
    query: str
    status: int
    bytes: int
    referer: str
    ua: str
    sid: str


def parse_log(path: Path) -> list[Line]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, start=1):
            m = NGINX_RE.match(raw.rstrip("\n"))
            assert m is not None, f"line {no} does not match the log_format: {raw!r}"
            target = m["target"]
            path_, _, query = target.partition("?")
            out.append(
                Line(
                    no,
                    m["ip"],
                    m["user"],
                    datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z"),
                    m["method"],
                    path_,
                    query,
                    int(m["status"]),
                    int(m["bytes"]),
                    m["referer"],
                    m["ua"],
                    m["sid"],
                )
            )
    return out


@dataclass
class Run:
    opts: SimOptions
    result: SimResult
    lines: list[Line]
    truth: dict[str, Any]
    directory: dict[str, tuple[str, str]]

    @property
    def out(self) -> Path:
        return self.result.out_dir


def _run(opts: SimOptions, out: Path) -> Run:
    result = simulate(opts, out)
    with open(out / "directory.csv", encoding="utf-8") as fh:
        directory = {r["account"]: (r["kind"], r["organization_id"]) for r in csv.DictReader(fh)}
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    return Run(opts, result, parse_log(out / "access.log"), truth, directory)


def small_options(seed: int = 7) -> SimOptions:
    return SimOptions(
        seed=seed,
        accounts=60,
        days=3,
        scenarios=tuple(ScenarioSpec.parse(s) for s in SMALL_SCENARIOS),
    )


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """60 accounts, 3 days, every scenario with small parameters."""
    return _run(small_options(), tmp_path_factory.mktemp("sim-small"))


@pytest.fixture(scope="session")
def legit_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Legitimate traffic only, 150 accounts over a full week (Monday to Sunday)."""
    opts = SimOptions(seed=3, accounts=150, days=7, attacks=False)
    return _run(opts, tmp_path_factory.mktemp("sim-legit"))


@pytest.fixture(scope="session")
def nginx_re() -> re.Pattern[str]:
    return NGINX_RE


@pytest.fixture(scope="session")
def log_parser() -> Any:
    return parse_log


@pytest.fixture(scope="session")
def run_sim() -> Any:
    """Run a simulation into a directory and parse its outputs: ``run_sim(opts, out)``."""
    return _run
