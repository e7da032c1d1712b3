"""Score detections of any tool against the simulator's ground truth (truth.json).

Pure Python, no peer needed: ``tests/bench_peers/test_peers_scoring.py`` proves it.

A *detection* is one alert/ban of one tool, normalised to: the event time at which the tool
decided (its detection time, in log time), a key naming the alerted entity (``ip:1.2.3.4``,
``account:PH0042``, ``campaign:c1``...) and the accounts/IPs it names. For each attack of
truth.json:

- detected: some detection names one of the attack's accounts or IPs, at or after the attack's
  start (an alert on a phished account *before* the attack began is not a detection of it).
  The accounts a login attack (brute force, spraying, stuffing) *tried* without getting in
  are its victims: a detection naming them, as accused or as the accounts tried (Rempart's
  ``targets``: their owners must change passwords), detects that attack only while it runs
  and up to ``VICTIM_GRACE`` after its last attempt. A spraying run that happened to try an
  insider's account has not detected the insider, and an account accused days after a
  stuffing run that tried it (a distributed one tries every account of the portal) is a
  false positive, not a detection of the stuffing. The accounts it got into stay its own at
  any time, as for the other attacks;
- time to detect: first such detection time minus the attack's start;
- records exposed before the first alert: distinct ids of the attack's ``exposed_timeline``
  first read at or before that detection time (all of them when the attack is missed);
- false-positive entities: distinct detection keys that name no account or IP of any attack
  (the accounts tried counting for login attacks only, as above).
"""

from __future__ import annotations

import ipaddress
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def parse_time(value: str | float | int) -> float:
    """ISO 8601 (``Z`` or offset) or epoch seconds -> epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


#: Scenarios whose truth ``accounts`` are the accounts the attacker tried.
LOGIN_ATTACKS = frozenset(
    {"brute_force", "password_spraying", "stuffing_single_ip", "stuffing_distributed"}
)
#: How long after a login attack's last attempt a detection naming its victims still counts.
VICTIM_GRACE = 3600.0


@dataclass(frozen=True, slots=True)
class Detection:
    tool: str
    rule: str
    time: float
    key: str
    #: Entities the detection accuses (accounts, IPs).
    names: frozenset[str] = field(default_factory=frozenset)
    #: Accounts an attacker tried, which the detection lists as its targets.
    targets: frozenset[str] = field(default_factory=frozenset)

    def names_in(self, attack: Attack) -> frozenset[str]:
        """The attack's entities this detection names."""
        named = self.names & attack.entities
        if attack.victims and attack.start <= self.time <= attack.end + VICTIM_GRACE:
            named |= (self.names | self.targets) & attack.victims
        return named


@dataclass(frozen=True, slots=True)
class Attack:
    id: str
    scenario: str
    start: float
    end: float
    #: Its addresses and the accounts it used (for a login attack: got into).
    entities: frozenset[str]
    timeline: tuple[tuple[float, str], ...]
    #: A login attack's accounts tried without success (see the module's docstring).
    victims: frozenset[str] = frozenset()

    @property
    def exposed_total(self) -> int:
        return len({nir for _, nir in self.timeline})

    def exposed_at(self, moment: float) -> int:
        return len({nir for when, nir in self.timeline if when <= moment})


@dataclass(frozen=True, slots=True)
class AttackScore:
    attack_id: str
    scenario: str
    detected: bool
    time_to_detect: float | None
    exposed_before: int
    exposed_total: int
    rules: tuple[str, ...]
    #: Accounts and IPs of the attack named by some detection at or after its start.
    entities_named: int = 0
    entities_total: int = 0


@dataclass(frozen=True, slots=True)
class ScenarioScore:
    scenario: str
    attacks: int
    detected: int
    time_to_detect: float | None
    exposed_before: int
    exposed_total: int
    rules: tuple[str, ...]
    entities_named: int = 0
    entities_total: int = 0


def load_attacks(truth: dict[str, Any]) -> list[Attack]:
    attacks = []
    for raw in truth.get("attacks", []):
        timeline = tuple(
            (parse_time(when), str(nir)) for when, nir in raw.get("exposed_timeline", [])
        )
        accounts = frozenset(map(str, raw.get("accounts", [])))
        victims: frozenset[str] = frozenset()
        if raw["scenario"] in LOGIN_ATTACKS:
            victims = accounts - frozenset(map(str, raw.get("compromised", [])))
        attacks.append(
            Attack(
                id=str(raw["id"]),
                scenario=str(raw["scenario"]),
                start=parse_time(raw["start"]),
                end=parse_time(raw["end"]),
                entities=(accounts - victims) | frozenset(map(str, raw.get("ips", []))),
                timeline=timeline,
                victims=victims,
            )
        )
    return attacks


def load_truth(path: Path) -> list[Attack]:
    return load_attacks(json.loads(path.read_text(encoding="utf-8")))


def score_attack(attack: Attack, detections: Iterable[Detection]) -> AttackScore:
    hits = sorted(
        (d for d in detections if d.time >= attack.start and d.names_in(attack)),
        key=lambda d: d.time,
    )
    total = len(attack.entities | attack.victims)
    if not hits:
        return AttackScore(
            attack.id,
            attack.scenario,
            False,
            None,
            attack.exposed_total,
            attack.exposed_total,
            (),
            0,
            total,
        )
    first = hits[0].time
    named = set().union(*(d.names_in(attack) for d in hits))
    return AttackScore(
        attack.id,
        attack.scenario,
        True,
        first - attack.start,
        attack.exposed_at(first),
        attack.exposed_total,
        tuple(sorted({d.rule for d in hits})),
        len(named),
        total,
    )


def false_positive_keys(attacks: Sequence[Attack], detections: Iterable[Detection]) -> set[str]:
    return {d.key for d in detections if not any(d.names_in(a) for a in attacks)}


def score_by_scenario(
    attacks: Sequence[Attack], detections: Sequence[Detection]
) -> list[ScenarioScore]:
    per: dict[str, list[AttackScore]] = {}
    for attack in attacks:
        per.setdefault(attack.scenario, []).append(score_attack(attack, detections))
    out = []
    for scenario, scores in sorted(per.items()):
        delays = [s.time_to_detect for s in scores if s.time_to_detect is not None]
        out.append(
            ScenarioScore(
                scenario=scenario,
                attacks=len(scores),
                detected=sum(s.detected for s in scores),
                time_to_detect=statistics.median(delays) if delays else None,
                exposed_before=sum(s.exposed_before for s in scores),
                exposed_total=sum(s.exposed_total for s in scores),
                rules=tuple(sorted({r for s in scores for r in s.rules})),
                entities_named=sum(s.entities_named for s in scores),
                entities_total=sum(s.entities_total for s in scores),
            )
        )
    return out


# --- normalisers, one per tool output -------------------------------------------------------


def rempart_detection(alert: dict[str, Any]) -> Detection:
    """One line of ``rempart hunt --out alerts.jsonl`` (``Alert.to_dict()``)."""
    kind = str(alert["entity_type"])
    entity = str(alert["entity"])
    # Accounts accused and addresses; apart, the accounts tried from the attacker (``targets``):
    # an alert naming the accounts a stuffing run tried tells their owners to change passwords.
    names = {str(v) for key in ("accounts", "ips") for v in alert.get(key, [])}
    if kind in ("account", "ip"):
        names.add(entity)
    return Detection(
        "rempart",
        str(alert["rule"]),
        parse_time(alert["detected_at"]),
        f"{kind}:{entity}",
        frozenset(names),
        frozenset(str(v) for v in alert.get("targets", [])),
    )


def fail2ban_detection(row: str) -> Detection:
    """One line of the log-only ban action: ``jail<TAB>id<TAB>epoch<TAB>failures``."""
    jail, ident, when, _failures = row.rstrip("\n").split("\t")
    kind = "account" if jail.endswith("-account") else "ip"
    return Detection("fail2ban", jail, float(when), f"{kind}:{ident}", frozenset({ident}))


def crowdsec_detection(
    scenario: str, scope: str, value: str, stopped_at: str, event_names: Iterable[str] = ()
) -> Detection:
    """One row of CrowdSec's ``alerts`` table; ``stopped_at`` is the overflow (log) time.

    ``event_names`` are the source IPs/users of the events kept with the alert: used only when
    the alert's own scope value names nothing (the site-wide bucket). Its addresses are the
    sources it accuses; its user names are the accounts those sources tried (targets, as
    Rempart's)."""
    kind = "ip" if scope.lower() == "ip" else scope.lower()
    names = {value} if value else set()
    targets = set()
    if not value:
        for name in event_names:
            (names if _is_address(name) else targets).add(name)
    return Detection(
        "crowdsec",
        scenario,
        parse_time(stopped_at.replace(" ", "T", 1)),
        f"{kind}:{value}",
        frozenset(names),
        frozenset(targets),
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
