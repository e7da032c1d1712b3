"""``rempart eval`` scores simulated attacks: detection, timing, exposure and false positives."""

from __future__ import annotations

import json

from rempart.detect.evaluate import evaluate_seed, summarise, to_json
from rempart.detect.loader import load_pack


def test_eval_scores_every_injected_scenario_and_stops_mass_harvest_early() -> None:
    run = evaluate_seed(11, load_pack(), accounts=30, days=2, learn_days=2)
    scenarios = {a.scenario for a in run.attacks}
    assert {"mass_harvest", "brute_force", "stuffing_single_ip"} <= scenarios
    mass = next(a for a in run.attacks if a.scenario == "mass_harvest")
    assert mass.detected and "TP-HARV-001" in mass.rules
    assert mass.exposed_before_detection is not None
    assert mass.exposed_before_detection < 200 < mass.exposed_total
    brute = next(a for a in run.attacks if a.scenario == "brute_force")
    assert brute.detected and brute.time_to_detect_s is not None
    assert brute.time_to_detect_s < 300
    assert run.days == 4 and run.accounts == 30
    summary = summarise([run])
    assert summary["account_days"] == 120
    assert summary["scenarios"]["mass_harvest"]["detected"] == 1
    assert json.loads(to_json([run]))["runs"][0]["seed"] == 11
