"""``split_rules``: two engines over the same events raise the one engine's alerts, so linked
rules (roll-ups and their signals, campaigns and theirs) share a side, and the explanation
context (``new_value`` on accounts) is present, muted, on the side that lacks it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rempart.alerts import Alert, EntityType
from rempart.detect.engine import Engine
from rempart.detect.hunt import run_hunt
from rempart.detect.loader import load_pack
from rempart.detect.partition import split_rules
from rempart.detect.spec import RuleSpec
from rempart.events import Event
from rempart.ingest import read_events
from rempart.ingest.profile import load_profile
from rempart.ingest.service import IngestRequest
from rempart.protect.tokens import Tokenizer, generate_key

KEY = generate_key()


@pytest.fixture(scope="module")
def pack() -> list[RuleSpec]:
    return load_pack("tiers-payant")


def _sides(pack: list[RuleSpec]) -> tuple[list[RuleSpec], list[RuleSpec]]:
    split = split_rules(pack)
    assert split is not None
    return split


def test_every_alerting_rule_runs_on_exactly_one_side(pack: list[RuleSpec]) -> None:
    parent, child = _sides(pack)
    originals = [s.id for s in parent + child if s.alert or s.risk > 0]
    assert sorted(originals) == sorted(s.id for s in pack if s.alert or s.risk > 0)
    assert len(parent) > 3 and len(child) > 3  # both engines get real work


def test_roll_ups_and_campaigns_sit_with_every_signal_they_add(pack: list[RuleSpec]) -> None:
    parent, child = _sides(pack)
    for side in (parent, child):
        live = {s.id for s in side if s.alert or s.risk > 0}
        for s in side:
            if s.type == "campaign":
                assert set(s.signals) <= live, s.id
            if s.type == "risk":
                wanted = {
                    t.id
                    for t in pack
                    if t.risk > 0 and t.entity == s.entity and (not s.signals or t.id in s.signals)
                }
                assert wanted <= live, s.id


def test_explanation_context_rules_are_copied_muted_in_pack_order(pack: list[RuleSpec]) -> None:
    parent, child = _sides(pack)
    order = {s.id: i for i, s in enumerate(pack)}
    for side in (parent, child):
        assert [order[s.id] for s in side] == sorted(order[s.id] for s in side)
        ids = [s.id for s in side]
        assert "TP-AUTH-006" in ids and "TP-AUTH-007" in ids
    muted = [s for s in parent + child if s.type == "new_value" and s.risk == 0 and not s.alert]
    assert {s.id for s in muted} == {"TP-AUTH-006", "TP-AUTH-007"}


def test_when_every_rule_is_linked_then_nothing_splits(pack: list[RuleSpec]) -> None:
    # Every account rule adds risk to roll-ups that take all signals: one linked group.
    accounts = [s for s in pack if s.entity == EntityType.ACCOUNT or s.type == "campaign"]
    linked = [replace(s, risk=10.0) if s.type not in ("risk", "campaign") else s for s in accounts]
    linked = [replace(s, signals=()) if s.type == "risk" else s for s in linked]
    assert split_rules(linked) is None
    assert split_rules(pack[:1]) is None


def test_two_engines_over_the_split_raise_the_one_engines_alerts(
    pack: list[RuleSpec], all_scenarios_log: Path
) -> None:
    events: list[Event] = list(
        read_events([all_scenarios_log], profile="tiers-payant", tokenizer=Tokenizer(KEY))
    )
    parent, child = _sides(pack)

    def alerts(specs: list[RuleSpec], track_first_seen: bool = True) -> dict[str, str]:
        engine = Engine(specs, lateness=60, track_first_seen=track_first_seen)
        for ev in events:
            engine.process(ev)
        engine.flush()
        return {a.id: json.dumps(a.to_dict(), sort_keys=True) for a in engine.alerts.values()}

    whole = alerts(pack)
    mine, theirs = alerts(parent), alerts(child, track_first_seen=False)  # as in run_hunt
    assert mine and theirs  # both sides raise alerts, or the comparison proves little
    both = mine | theirs
    assert len(whole) >= 5
    assert both == whole
    # The child's alerts survive their trip back to the parent as JSON.
    for text in both.values():
        assert json.dumps(Alert.from_dict(json.loads(text)).to_dict(), sort_keys=True) == text


def test_with_a_state_store_two_workers_give_the_serial_alerts_and_state(
    pack: list[RuleSpec], all_scenarios_log: Path, tmp_path: Path
) -> None:
    def hunt(workers: int) -> tuple[list[str], int]:
        request = IngestRequest(
            paths=[str(all_scenarios_log)],
            profile=load_profile("tiers-payant"),
            tokenizer=Tokenizer(KEY),
        )
        url = f"sqlite:///{tmp_path / f'state{workers}.db'}"
        result = run_hunt(request, pack, lateness=60, state_url=url, workers=workers)
        return [json.dumps(a.to_dict(), sort_keys=True) for a in result.alerts], result.state_bytes

    serial, serial_bytes = hunt(1)
    piped, piped_bytes = hunt(2)
    assert piped == serial and len(serial) >= 5
    assert piped_bytes == serial_bytes > 0


def test_first_seen_history_is_kept_only_when_asked_or_read(
    pack: list[RuleSpec], all_scenarios_log: Path
) -> None:
    events = list(
        read_events([all_scenarios_log], profile="tiers-payant", tokenizer=Tokenizer(KEY))
    )
    _parent, child = _sides(pack)
    readers = [s for s in pack if s.type in ("baseline", "surprise")]
    assert readers and not any(s.type in ("baseline", "surprise") for s in child)
    for specs, track, kept in (
        (child, False, False),  # no rule reads it, and no state will be saved
        (child, True, True),  # the default: a saved state keeps learning for later rules
        (readers, False, True),  # the rules read it: kept whatever was asked
    ):
        engine = Engine(specs, track_first_seen=track)
        for ev in events:
            engine.process(ev)
        assert bool(engine.history.dump()) == kept, ([s.id for s in specs], track)
