"""Every shipped rule proves itself with its own samples; a rule without samples fails."""

from __future__ import annotations

import pytest

from rempart.detect.engine import Engine
from rempart.detect.loader import builtin_pack_dir, lint_rules, load_pack
from rempart.detect.samples import run_sample
from rempart.events import Event

PACK = load_pack("tiers-payant")
BY_ID = {s.id: s for s in PACK}
CASES = [(s.id, i) for s in PACK for i in range(len(s.samples))]


@pytest.mark.parametrize(("rule_id", "index"), CASES, ids=[f"{r}#{i}" for r, i in CASES])
def test_rule_sample_raises_exactly_what_it_promises(rule_id: str, index: int) -> None:
    spec = BY_ID[rule_id]
    result = run_sample(spec, spec.samples[index], BY_ID)
    assert result.ok, f"{result.where} {result.sample}: {result.problems}"


def test_every_shipped_rule_has_a_sample_that_alerts_and_one_that_must_not() -> None:
    for spec in PACK:
        assert any(s.expect for s in spec.samples), f"{spec.id} has no positive sample"
        assert any(s.forbid for s in spec.samples), f"{spec.id} has no negative sample"


def test_pack_lints_clean_and_covers_the_threat_list() -> None:
    specs, problems = lint_rules([builtin_pack_dir("tiers-payant")])
    assert problems == []
    techniques = {t for s in specs for t in s.technique}
    assert {"T1110.001", "T1110.003", "T1110.004", "T1078", "T1119", "T1213"} <= techniques
    types = {s.type for s in specs}
    assert {
        "event_count",
        "value_count",
        "temporal_ordered",
        "new_value",
        "baseline",
        "risk",
        "campaign",
    } <= types


def test_rule_without_samples_is_refused(tmp_path) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: X-NOSAMPLE-1\nversion: 1\ntitle: t\ntype: match\nseverity: low\n"
        "description: d\ntechnique: T1078\nfalse_positives: none\nfilter: status == 500\n"
    )
    _specs, problems = lint_rules([tmp_path])
    assert any("no samples" in str(p) for p in problems)


def test_a_sample_that_does_not_hold_is_reported_as_failing(tmp_path) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: X-WRONG-1\nversion: 1\ntitle: t\ntype: event_count\nseverity: low\n"
        "description: d\ntechnique: T1110.001\nfalse_positives: none\n"
        "filter: action == 'auth.login' and outcome == 'failure'\nwindow: 5m\nthreshold: 5\n"
        "samples:\n  - name: only two failures\n    events:\n"
        "      - {user_name: PH1, action: auth.login, outcome: failure}\n"
        "      - {user_name: PH1, action: auth.login, outcome: failure}\n"
        "    expect: [{entity: PH1}]\n"
    )
    specs, problems = lint_rules([tmp_path])
    assert problems == []
    result = run_sample(specs[0], specs[0].samples[0], {s.id: s for s in specs})
    assert not result.ok
    assert "expected an alert for PH1" in result.problems[0]


def test_sequence_steps_that_the_action_and_outcome_do_not_decide_are_tested_per_event(
    tmp_path,
) -> None:
    """The shipped sequence rule's steps are decided by (action, outcome) alone; a step on
    another field (here the status) is a compiled filter run on each event of the step."""
    (tmp_path / "r.yaml").write_text(
        "id: X-SEQ-1\nversion: 1\ntitle: t\ntype: temporal_ordered\nseverity: low\n"
        "description: d\ntechnique: T1119\nfalse_positives: none\ngroup_by: user_name\n"
        'filter: action == "beneficiary.read"\nwindow: 10m\nsteps:\n'
        "  - {name: misses, filter: 'action == \"beneficiary.read\" and status == 404', count: 3}\n"
        "  - {name: a hit, filter: 'action == \"beneficiary.read\" and status == 200'}\n"
        "samples:\n"
        "  - name: three misses then a hit\n    events:\n"
        "      - repeat: 3\n        every: 10s\n"
        "        event: {user_name: PH1, action: beneficiary.read, status: 404}\n"
        "      - {user_name: PH1, action: beneficiary.read, status: 200}\n"
        "    expect: [{entity: PH1}]\n"
        "  - name: three misses then more misses\n    events:\n"
        "      - repeat: 5\n        every: 10s\n"
        "        event: {user_name: PH2, action: beneficiary.read, status: 404}\n"
        "    forbid: [PH2]\n"
        "  - name: hits, then two misses and a hit\n    events:\n"
        "      - repeat: 3\n        every: 10s\n"
        "        event: {user_name: PH3, action: beneficiary.read, status: 200}\n"
        "      - repeat: 2\n        every: 10s\n"
        "        event: {user_name: PH3, action: beneficiary.read, status: 404}\n"
        "      - {user_name: PH3, action: beneficiary.read, status: 200}\n"
        "    forbid: [PH3]\n"
    )
    specs, problems = lint_rules([tmp_path])
    assert problems == []
    by_id = {s.id: s for s in specs}
    for sample in specs[0].samples:
        result = run_sample(specs[0], sample, by_id)
        assert result.ok, (sample.name, result)
    # Once complete, the chain fires again on each event of its last step, and only on those.
    engine = Engine(specs)
    t = 1_700_000_000.0
    for i, status in enumerate([404, 404, 404, 200, 404, 200]):
        engine.process(
            Event(t + 10 * i, "192.0.2.1", "beneficiary.read", "success", "PH9", status=status)
        )
        updates = [a.updates for a in engine.alerts.values()]
        assert updates == ([] if i < 3 else [0] if i < 5 else [1]), (i, updates)
