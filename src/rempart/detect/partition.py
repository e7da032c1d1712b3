"""Split a rule pack between two engines that never need each other's state.

``rempart hunt --workers 2`` decodes in a forked child; the child also runs part of the rules
on the events it decodes, so that both cores detect. Two engines fed the same events raise
exactly the alerts one engine would, provided no rule's outcome depends on a rule in the other
engine. Within one engine rules meet in four places, and the split keeps each of them whole:

- a ``risk`` roll-up adds the signals of the rules with ``risk`` > 0 (all of them, or those it
  lists, of its entity type): the roll-up and those rules stay together;
- a ``campaign`` correlates the signals it lists: together too;
- ``new_value`` rules on accounts give the "new IP and client since ..." context of every
  account alert's explanation: each engine that has account alerts gets them, as a muted copy
  (no alert, no risk) when the original sits in the other engine;
- exposure counting (``ExposureWatch``), alert ids and open episodes are per alert: no link.

Groups of linked rules are then shared out greedily by a rough cost per offered event for each
rule type, the child starting with the decoding's cost. The costs are estimates measured on the
``tiers-payant`` pack (``bench/detect_hunt.py``), not a contract: a poor balance only costs time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rempart.alerts import EntityType
from rempart.detect.expr import required_actions
from rempart.detect.spec import RuleSpec

#: Rough engine cost (µs per event offered) by rule type, measured on the ``tiers-payant``
#: pack: baseline rules share their day state, so each costs a fraction of the group's.
TYPE_COST = {
    "surprise": 2.4,
    "baseline": 0.65,
    "value_count": 1.7,
    "cadence": 1.2,
    "temporal_ordered": 0.55,
    "event_count": 0.5,
    "new_value": 0.3,
    "match": 0.3,
    "risk": 0.0,  # roll-ups only see their rules' signals
    "campaign": 0.0,
}
#: The child's head start (it decodes and encodes) and the parent's (it rebuilds the events),
#: in the same units: calibrated with the pure-Python modules on the 1M-line peers log, where
#: the parent then spent 9.4 to 10.0 CPU-s and the child 7.3 to 8.8 (the child keeps no
#: first-seen history: none of its rules reads it). Not recalibrated for the compiled modules:
#: the same split measured 9.0 to 10.3 and 9.3 to 9.7. Moving the surprise rule to the child
#: measured worse: it needs that history.
DECODE_COST = 6.0
REBUILD_COST = 1.6
#: Rules that only see authentication events see few of them (a login per session).
RARE_ACTIONS = frozenset({"auth.login", "auth.logout", "auth.mfa"})


def rule_cost(spec: RuleSpec) -> float:
    """Rough engine cost of a rule per event of the log (see ``TYPE_COST``)."""
    cost = TYPE_COST.get(spec.type, 0.5)
    if spec.filter:
        actions = required_actions(spec.observed_filter())
        if actions is not None and actions <= RARE_ACTIONS:
            cost *= 0.1
    return cost


def _linked_groups(specs: Sequence[RuleSpec]) -> list[list[RuleSpec]]:
    """Rules that must share an engine (roll-ups with their signals), in pack order."""
    parent = list(range(len(specs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    for i, s in enumerate(specs):
        for j, t in enumerate(specs):
            if s.type == "risk" and t.risk > 0 and t.entity == s.entity:
                if not s.signals or t.id in s.signals:
                    join(i, j)
            elif s.type == "campaign" and t.id in s.signals:
                join(i, j)
    groups: dict[int, list[RuleSpec]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(find(i), []).append(s)
    return list(groups.values())


def split_rules(specs: Sequence[RuleSpec]) -> tuple[list[RuleSpec], list[RuleSpec]] | None:
    """(the parent's rules, the child's rules), each in pack order; ``None`` when the pack
    has fewer than two independent groups of alerting rules."""
    groups = _linked_groups(specs)
    if len(groups) < 2:
        return None
    cost = [sum(rule_cost(s) for s in g) for g in groups]
    load = {"parent": REBUILD_COST, "child": DECODE_COST}
    side: dict[str, str] = {}
    for gi in sorted(range(len(groups)), key=lambda k: -cost[k]):
        where = min(load, key=lambda k: (load[k], k != "parent"))
        load[where] += cost[gi]
        for s in groups[gi]:
            side[s.id] = where
    out: dict[str, list[RuleSpec]] = {"parent": [], "child": []}
    for s in specs:
        out[side[s.id]].append(s)
    if not out["parent"] or not out["child"]:
        return None
    # Context rules in pack order (explanations read what earlier rules of the event noted).
    wants = {k: any(s.alert and s.entity == EntityType.ACCOUNT for s in v) for k, v in out.items()}
    parent: list[RuleSpec] = []
    child: list[RuleSpec] = []
    for s in specs:
        mine, other = (parent, child) if side[s.id] == "parent" else (child, parent)
        mine.append(s)
        if s.notes_novelty and wants["child" if mine is parent else "parent"]:
            other.append(replace(s, alert=False, risk=0.0))
    return parent, child
