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


def test_eval_with_the_claims_history_finds_the_insider_the_log_alone_misses() -> None:
    """Seed 1's insider (a pharmacy, 16 strangers over six days): hidden among first reads of
    regulars in the log alone; a stranger among strangers with the claims history."""
    pack = load_pack()
    alone = evaluate_seed(1, pack)
    informed = evaluate_seed(1, pack, care_history=True)
    insider = [next(a for a in r.attacks if a.scenario == "insider") for r in (alone, informed)]
    assert not insider[0].detected
    assert insider[1].detected and insider[1].rules == ["TP-INS-004"]
    assert informed.care_history and not alone.care_history
    assert len(informed.fp_accounts) <= len(alone.fp_accounts) + 1
    assert all(a.detected for r in (alone, informed) for a in r.attacks if a.scenario != "insider")
