"""Each attack scenario: present in truth.json, consistent with the log lines, shaped as named."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from rempart.sim import SCENARIOS, ScenarioSpec, SimOptions, iter_requests, simulate
from rempart.sim.scenarios import PARAM_RANGES, SimOptionsError


def _attack(run: Any, scenario: str) -> dict[str, Any]:
    found = [a for a in run.truth["attacks"] if a["scenario"] == scenario]
    assert len(found) == 1, scenario
    return found[0]


def _rights_nir(line: Any) -> str | None:
    parts = line.path.split("/")
    if len(parts) == 6 and parts[3] == "beneficiaires" and parts[5] == "droits":
        return str(parts[4])
    return None


def _legit_reads_before(run: Any, account: str, before: datetime, attack_ips: set[str]) -> set[str]:
    return {
        n
        for ln in run.lines
        if ln.user == account and ln.time < before and ln.ip not in attack_ips and ln.status == 200
        and (n := _rights_nir(ln)) is not None
    }  # fmt: skip


def test_every_scenario_is_in_truth_with_lines(small_run: Any) -> None:
    assert [a["scenario"] for a in small_run.truth["attacks"]] == list(SCENARIOS)
    for a in small_run.truth["attacks"]:
        assert a["lines"] > 0 and a["first_line"] is not None, a["id"]
        assert a["id"] == f"{a['scenario']}-1"
        first = small_run.lines[a["first_line"] - 1]
        assert first.user in a["accounts"] and first.ip in a["ips"]
        assert datetime.fromisoformat(a["start"]).replace(microsecond=0) == first.time
        assert set(PARAM_RANGES[a["scenario"]]) <= set(a["params"])


def test_tagged_requests_match_truth_accounts_ips_and_exposed(small_run: Any) -> None:
    users: dict[int, set[str]] = defaultdict(set)
    ips: dict[int, set[str]] = defaultdict(set)
    exposed: dict[int, set[str]] = defaultdict(set)
    for r in iter_requests(small_run.opts):
        if r.attack:
            users[r.attack].add(r.user_name)
            ips[r.attack].add(r.source_ip)
            if r.nir and r.status == 200:
                exposed[r.attack].add(r.nir)
    for i, a in enumerate(small_run.truth["attacks"], start=1):
        assert sorted(users[i]) == a["accounts"], a["id"]
        assert sorted(ips[i]) == a["ips"], a["id"]
        assert sorted(exposed[i]) == a["exposed"], a["id"]
        times = [t for t, _ in a["exposed_timeline"]]
        assert times == sorted(times)
        assert sorted(n for _, n in a["exposed_timeline"]) == a["exposed"]


@pytest.mark.parametrize("scenario", ["mass_harvest", "slow_harvest"])
def test_harvest_exposed_equals_200_reads_from_attacker_ips(small_run: Any, scenario: str) -> None:
    a = _attack(small_run, scenario)
    ips, accounts = set(a["ips"]), set(a["accounts"])
    legit_ips = {ln.ip for ln in small_run.lines if ln.user in accounts} - ips
    assert not legit_ips & ips  # attacker infrastructure is new to these accounts
    reads = [ln for ln in small_run.lines if ln.ip in ips and _rights_nir(ln)]
    assert {ln.user for ln in reads} == accounts
    assert {_rights_nir(ln) for ln in reads if ln.status == 200} == set(a["exposed"])
    assert any(ln.status == 404 for ln in reads)
    claims = [ln for ln in small_run.lines if ln.ip in ips and ln.path == "/api/v1/actes"]
    assert claims == []
    assert len(set(a["user_agents"])) == 1


def test_mass_harvest_reads_at_machine_speed_mostly_new_people_some_served_by_others(
    small_run: Any,
) -> None:
    a = _attack(small_run, "mass_harvest")
    (account,) = a["accounts"]
    ips = set(a["ips"])
    reads = [ln for ln in small_run.lines if ln.ip in ips and _rights_nir(ln)]
    assert len(reads) == 400
    span = (reads[-1].time - reads[0].time).total_seconds()
    assert span < 400 * 60 / 240 * 3  # around 240 reads a minute
    start = datetime.fromisoformat(a["start"])
    before = _legit_reads_before(small_run, account, start, ips)
    exposed = set(a["exposed"])
    assert 1 <= len(exposed & before) <= 3  # "served before" people are re-read
    assert len(exposed - before) > 0.9 * len(exposed)
    others = {
        n
        for ln in small_run.lines
        if ln.user != account and ln.status == 200 and (n := _rights_nir(ln))
    }
    assert exposed & others  # people legitimately served by other practitioners


def test_slow_harvest_spreads_a_few_times_usual_volume_over_days_in_opening_hours(
    small_run: Any,
) -> None:
    a = _attack(small_run, "slow_harvest")
    assert len(a["accounts"]) == 5 == len(a["ips"])
    ips = set(a["ips"])
    per_day: Counter[tuple[str, str]] = Counter()
    for ln in small_run.lines:
        if ln.ip in ips and _rights_nir(ln):
            per_day[(ln.user, ln.time.date().isoformat())] += 1
            assert 6 <= ln.time.hour <= 21
    days = {d for _, d in per_day}
    assert len(days) == 2
    assert max(per_day.values()) < 1000


def test_insider_reads_from_own_workstation_without_claims(small_run: Any) -> None:
    a = _attack(small_run, "insider")
    (account,) = a["accounts"]
    assert small_run.directory[account][0] in ("hopital", "centre_sante", "pharmacie")
    assert len(a["exposed"]) == 6
    tagged = [r for r in iter_requests(small_run.opts) if r.attack == 7]
    legit_uas = {r.user_agent for r in iter_requests(small_run.opts)
                 if r.user_name == account and not r.attack}  # fmt: skip
    assert {r.user_agent for r in tagged} <= legit_uas
    assert {r.action for r in tagged} == {"beneficiary.read"}
    assert all(r.session_id != "-" for r in tagged)


def test_login_attacks_have_their_shape(small_run: Any) -> None:
    brute = _attack(small_run, "brute_force")
    assert len(brute["accounts"]) == 1 and len(brute["ips"]) == 1
    lines = [ln for ln in small_run.lines if ln.ip in brute["ips"] and ln.path == "/auth/login"]
    assert Counter(ln.status for ln in lines) == {401: 59, 200: 1}
    assert brute["compromised"] == brute["accounts"]

    spray = _attack(small_run, "password_spraying")
    assert len(spray["ips"]) == 1 and len(spray["accounts"]) == 20
    tries = Counter(ln.user for ln in small_run.lines if ln.ip in spray["ips"]
                    and ln.path == "/auth/login")  # fmt: skip
    assert max(tries.values()) <= 2 and len(spray["compromised"]) == 2

    single = _attack(small_run, "stuffing_single_ip")
    assert len(single["ips"]) == 1 and len(single["accounts"]) == 120
    unknown = [u for u in single["accounts"] if u not in small_run.directory]
    assert 0 < len(unknown) < 120

    dist = _attack(small_run, "stuffing_distributed")
    assert len(dist["ips"]) == 12 and len(dist["user_agents"]) == 1
    by_ip: dict[str, list[datetime]] = defaultdict(list)
    for ln in small_run.lines:
        if ln.ip in dist["ips"] and ln.path == "/auth/login":
            by_ip[ln.ip].append(ln.time)
    gaps = [(b - a).total_seconds() for ts in by_ip.values() for a, b in pairwise(ts)]
    assert gaps and all(89 <= g <= 91 for g in gaps)  # one attempt every period_s per IP


def test_when_attacks_are_off_or_selected_then_only_those_appear(tmp_path: Path) -> None:
    off = simulate(SimOptions(seed=4, accounts=20, days=2, attacks=False), tmp_path / "off")
    assert off.truth["attacks"] == [] and off.truth["totals"]["attack_lines"] == 0
    one = SimOptions(
        seed=4, accounts=20, days=2, scenarios=(ScenarioSpec.parse("brute_force:attempts=30"),)
    )
    res = simulate(one, tmp_path / "one")
    assert [a["scenario"] for a in res.truth["attacks"]] == ["brute_force"]
    legit = (tmp_path / "off/access.log").read_text().splitlines()
    mixed = (tmp_path / "one/access.log").read_text().splitlines()
    assert len(mixed) == len(legit) + res.truth["attacks"][0]["lines"]


def test_forced_accounts_and_start_are_honoured(tmp_path: Path) -> None:
    spec = ScenarioSpec.parse("mass_harvest:accounts=PH0000,count=50,start=2026-12-01T03:00")
    with pytest.raises(SimOptionsError, match="unknown account"):
        simulate(SimOptions(seed=4, accounts=20, days=2, scenarios=(spec,)), tmp_path / "x")
    res = simulate(SimOptions(seed=4, accounts=20, days=2, attacks=False), tmp_path / "dir")
    name = next(a for a in (tmp_path / "dir/directory.csv").read_text().split() if a[:2] == "PH")
    name = name.split(",")[0]
    spec = ScenarioSpec.parse(f"mass_harvest:accounts={name},count=50,start=2026-12-01T03:00")
    res = simulate(SimOptions(seed=4, accounts=20, days=2, scenarios=(spec,)), tmp_path / "y")
    (a,) = res.truth["attacks"]
    assert a["accounts"] == [name]
    assert a["start"].startswith("2026-12-01T03:00")
    with pytest.raises(SimOptionsError, match="outside"):
        bad = ScenarioSpec.parse("insider:start=2027-01-01")
        simulate(SimOptions(seed=4, accounts=20, days=2, scenarios=(bad,)), tmp_path / "z")


def test_randomised_options_draw_every_parameter_in_range_like_the_defaults() -> None:
    opts = SimOptions.randomised(21, accounts=50, days=5)
    assert opts.scenarios is not None
    assert [s.name for s in opts.scenarios] == list(SCENARIOS)
    for spec in opts.scenarios:
        params = spec.given
        for key, p in PARAM_RANGES[spec.name].items():
            if p.type in (int, float):
                assert p.low <= params[key] <= p.high, (spec.name, key)
        assert "start" in params
    default = SimOptions(seed=21, accounts=50, days=5)
    assert default.resolved_params() == opts.resolved_params()
    assert SimOptions.randomised(22).resolved_params() != opts.resolved_params()


def test_bad_scenario_text_gives_one_clear_error() -> None:
    with pytest.raises(SimOptionsError, match="unknown scenario"):
        ScenarioSpec.parse("harvest")
    with pytest.raises(SimOptionsError, match="not key=value"):
        ScenarioSpec.parse("mass_harvest:count")
    with pytest.raises(SimOptionsError, match="not a valid int"):
        ScenarioSpec.parse("mass_harvest:count=many")
    spec = ScenarioSpec.parse("insider:ip=1.2.3.4")  # an insider uses the account's own IP
    with pytest.raises(SimOptionsError, match="unknown parameter"):
        SimOptions(scenarios=(spec,)).resolved_params()


def test_duration_sets_the_pace_of_an_attack(tmp_path: Path) -> None:
    spec = ScenarioSpec.parse("mass_harvest:count=300,duration_min=10")
    res = simulate(SimOptions(seed=5, accounts=20, days=2, scenarios=(spec,)), tmp_path)
    (a,) = res.truth["attacks"]
    assert a["params"]["rate"] == 30
    minutes = (datetime.fromisoformat(a["end"]) - datetime.fromisoformat(a["start"])).seconds / 60
    assert 6 < minutes < 15
    both = ScenarioSpec.parse("mass_harvest:rate=10,duration_min=10")
    with pytest.raises(SimOptionsError, match="not both"):
        SimOptions(scenarios=(both,)).resolved_params()
