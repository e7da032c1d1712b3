"""Reads awaiting a claim: the time of the oldest one is kept beside the queue (``oldest``).

The surprise rule (TP-INS-004) and the claim-pairing baseline rules check, at every event,
whether the oldest pending read's claim window has passed. They read that time from a field of
the account's state, not from the queue's first item; these tests hold the field to the queue
through reads, claims of the latest and of older reads of a session, expiries and a restart.
"""

from __future__ import annotations

import math
from typing import Any

from detect_events import claim_event, read_event
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.detect.baseline import BaselineRule
from rempart.detect.care import SurpriseRule
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.events import Event

PACK = load_pack("tiers-payant")
T0 = 1706770800.0  # 2024-02-01 07:00Z

#: (account, session, action: read of a new / a known beneficiary or claim, seconds since the
#: previous event); gaps reach past a claim window and across days.
STEP = st.tuples(
    st.sampled_from(["PH0001", "PH0002"]),
    st.sampled_from(["s1", "s2", "s3"]),
    st.sampled_from(["new", "known", "claim", "claim"]),
    st.sampled_from([0.0, 1.0, 40.0, 600.0, 3000.0, 3700.0, 7300.0, 40000.0]),
)


def _events(steps: list[tuple[str, str, str, float]]) -> list[Event]:
    out: list[Event] = []
    t = T0
    for n, (user, sid, what, gap) in enumerate(steps, start=1):
        t += gap
        if what == "claim":
            out.append(claim_event(t, user, session_id=sid, line=n))
        else:
            token = f"{user}-{n}" if what == "new" else f"{user}-known-{n % 3}"
            out.append(read_event(t, user, token, session_id=sid, line=n))
    return out


def _queues(engine: Engine) -> list[tuple[str, Any]]:
    """Every per-key state of the engine that holds pending reads (rule id, state)."""
    out: list[tuple[str, Any]] = []
    for rule in engine.rules:
        if isinstance(rule, SurpriseRule):
            out += [(rule.spec.id, s) for s in rule.state.values()]
        elif isinstance(rule, BaselineRule):
            out += [(rule.spec.id, s) for s in rule.tracker._state.values()]
    return out


def _time(read: Any) -> float:
    """A pending read's time: a ``(time, novel)`` tuple (baseline) or a ``_Read`` (surprise)."""
    return float(read[0]) if isinstance(read, tuple) else float(read.ts)


def _reads(state: Any) -> list[Any]:
    """The reads a state holds awaiting a claim, oldest first: ``pending`` and the latest one,
    which the state may hold in a field of its own (``reads`` gives them all)."""
    reads: list[Any] = state.reads()
    return reads


def _check(engine: Engine) -> int:
    queues = _queues(engine)
    for rule_id, s in queues:
        reads = _reads(s)
        expected = _time(reads[0]) if reads else math.inf
        assert s.oldest == expected, (rule_id, reads, s.oldest)
    return sum(1 for _r, s in queues if _reads(s))


@settings(max_examples=60, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=80), st.integers(min_value=0, max_value=80))
def test_the_oldest_pending_time_is_that_of_the_queue_after_every_event_and_a_restart(
    steps: list[tuple[str, str, str, float]], cut: int
) -> None:
    events = _events(steps)
    engine = Engine(PACK)
    for e in events[:cut]:
        engine.process(e)
        _check(engine)
    restarted = Engine(PACK)
    restarted.load_state(engine.dump_state())
    _check(restarted)
    for e in events[cut:]:
        restarted.process(e)
        _check(restarted)
    restarted.flush()
    _check(restarted)


def test_claims_of_older_reads_and_expiry_move_the_oldest_time() -> None:
    """A worked case: the checks above see non-empty queues and each way a queue shrinks."""
    engine = Engine(PACK, lateness=0.0)
    events = [
        read_event(T0, "PH0001", "a", session_id="s1", line=1),
        read_event(T0 + 10, "PH0001", "b", session_id="s2", line=2),
        read_event(T0 + 20, "PH0001", "c", session_id="s2", line=3),
        claim_event(T0 + 30, "PH0001", session_id="s1", line=4),  # pairs with the oldest
    ]
    for e in events:
        engine.process(e)
    assert _check(engine) >= 1
    rule = next(r for r in engine.rules if isinstance(r, SurpriseRule))
    state = rule.state["PH0001"]
    assert [p.ts for p in _reads(state)] == [T0 + 10, T0 + 20]
    assert state.oldest == T0 + 10
    engine.process(read_event(T0 + 4 * 3600, "PH0001", "d", session_id="s3", line=5))
    _check(engine)
    assert state.oldest == T0 + 4 * 3600  # the two older reads expired as orphans
    engine.process(claim_event(T0 + 4 * 3600 + 5, "PH0001", session_id="s3", line=6))
    _check(engine)
    assert _reads(state) == [] and state.oldest == math.inf


def test_when_the_older_reads_expire_the_latest_one_becomes_the_oldest() -> None:
    """Baseline day state: two reads, the first older than the claim window when a third
    comes, the second not. The latest read is held apart from the list, so the expiry must
    take the oldest time from it once the list is empty."""
    engine = Engine(PACK, lateness=0.0)
    rule = next(r for r in engine.rules if isinstance(r, BaselineRule) and r.pairs_claims)
    window = rule.spec.claim_window
    for n, t in enumerate((T0, T0 + window - 60, T0 + window + 60), start=1):
        engine.process(read_event(t, "PH0001", f"b{n}", session_id="s1", line=n))
        _check(engine)
    state = rule.tracker.state["PH0001"]
    assert [float(t) for t, _novel in state.reads()] == [T0 + window - 60, T0 + window + 60]
    assert state.oldest == T0 + window - 60
