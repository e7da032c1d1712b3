"""``rempart eval``: run the simulator's scenarios through ingestion and the engine, score them.

Per seed: the simulator draws every scenario's parameters from the seed, with the attacks placed
after ``learn_days`` days of legitimate traffic only (a deployed engine has weeks of learning;
the evaluation gives it one week by default), and writes the nginx log and its ground truth.
The log goes through the real ingestion (parsing, pseudonymisation, account directory) and the
shipped rule pack. Then, per attack:

- detected: an alert is *attributed* to the attack when it names one of the attack's accounts
  (for login attacks: the accounts actually compromised), addresses or client strings (as its
  entity, accounts or IPs), and was raised between the attack's start and 24 h after its end;
- time to detect: first attributed alert's ``detected_at`` minus the attack's start;
- records exposed before detection: distinct beneficiaries of the truth's ``exposed_timeline``
  first read before that moment;

and over the whole run, false-positive accounts per 1,000 account-days: distinct accounts named
by alerts attributed to no attack, over (directory accounts x simulated days).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rempart.alerts import Alert, EntityType
from rempart.detect.engine import Engine
from rempart.detect.spec import RuleSpec

if TYPE_CHECKING:
    from rempart.protect.tokens import TokenKey
    from rempart.sim import SimResult

ATTRIBUTION_GRACE = 86400.0
_LOGIN_ATTACKS = ("password_spraying", "stuffing_single_ip", "stuffing_distributed")


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class AttackScore:
    seed: int
    attack: str
    scenario: str
    detected: bool
    accounts: int
    start: str
    time_to_detect_s: float | None
    exposed_total: int
    exposed_before_detection: int | None
    rules: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeedScore:
    seed: int
    lines: int
    events: int
    accounts: int
    days: int
    alerts: int
    fp_alerts: int
    fp_accounts: list[str]
    fp_per_1000_account_days: float
    seconds: float
    attacks: list[AttackScore] = field(default_factory=list)
    fp_rules: dict[str, int] = field(default_factory=dict)
    care_history: bool = False


def _identity(attack: dict[str, Any]) -> set[str]:
    ids = set(attack.get("ips", [])) | set(attack.get("user_agents", []))
    if attack["scenario"] in _LOGIN_ATTACKS:
        ids |= set(attack.get("compromised", []))
    else:
        ids |= set(attack.get("accounts", []))
    if attack["scenario"] == "insider":
        ids = set(attack.get("accounts", []))  # the insider's IPs and clients are the account's
    return ids


def _names(alert: Alert) -> set[str]:
    """What an alert accuses: its entity, a campaign's value, and its accused accounts.

    The accounts *tried* from an address (spraying, stuffing: ``targets``) are victims, not
    accused; a tried account that then logged in from the attacker is in ``accounts``."""
    names = {alert.entity, *alert.accounts}
    if alert.entity_type == EntityType.CAMPAIGN and "=" in alert.entity:
        names.add(alert.entity.split("=", 1)[1])
    return names


def score_run(
    truth: dict[str, Any], alerts: list[Alert], accounts: int, days: int, seed: int
) -> tuple[list[AttackScore], list[Alert]]:
    """Attribute alerts to attacks; returns per-attack scores and unattributed alerts."""
    attributed: set[str] = set()
    scores = []
    for attack in truth["attacks"]:
        ident = _identity(attack)
        start, end = _ts(attack["start"]), _ts(attack["end"])
        mine = [
            a
            for a in alerts
            if start - 60 <= a.detected_at <= end + ATTRIBUTION_GRACE and _names(a) & ident
        ]
        attributed.update(a.id for a in mine)
        first = min((a.detected_at for a in mine), default=None)
        timeline = attack.get("exposed_timeline", [])
        exposed_before = None
        if first is not None:
            exposed_before = len({nir for t, nir in timeline if _ts(t) < first})
        scores.append(
            AttackScore(
                seed=seed,
                attack=attack["id"],
                scenario=attack["scenario"],
                detected=first is not None,
                accounts=len(attack.get("accounts", [])),
                start=attack["start"],
                time_to_detect_s=None if first is None else round(first - start, 1),
                exposed_total=len(attack.get("exposed", [])),
                exposed_before_detection=exposed_before,
                rules=sorted({a.rule_id for a in mine}),
                params={k: v for k, v in attack.get("params", {}).items() if k != "accounts"},
            )
        )
    return scores, [a for a in alerts if a.id not in attributed]


def fp_accounts(unattributed: list[Alert]) -> set[str]:
    """Accounts wrongly accused (an IP or client alert accuses the accounts using it)."""
    out: set[str] = set()
    for a in unattributed:
        if a.entity_type == EntityType.ACCOUNT:
            out.add(a.entity)
        else:
            out.update(a.accounts)
    return out


def replay(result: SimResult, engine: Engine, key: TokenKey | None = None) -> Engine:
    """``engine`` after the simulated log of ``result`` went through the real ingestion
    (profile ``tiers-payant``, the run's directory, tokens under ``key``, a fresh one by
    default) and through it, flushed; with the run's claims history first when it wrote one
    (``simulate(care=True)``)."""
    from rempart.ingest.care import load_care_history
    from rempart.ingest.normalise import load_directory
    from rempart.ingest.pipeline import iter_batches
    from rempart.protect.tokens import Tokenizer, generate_key

    tokenizer = Tokenizer(key or generate_key())
    if result.care is not None:
        engine.add_care_history(load_care_history([result.care], tokenizer).accounts)
    process = engine.process
    for batch in iter_batches(
        [result.access_log],
        profile="tiers-payant",
        tokenizer=tokenizer,
        directory=load_directory(result.directory),
    ):
        for ev in batch.events():
            process(ev)
    engine.flush()
    return engine


def evaluate_seed(
    seed: int,
    specs: list[RuleSpec],
    *,
    accounts: int = 200,
    days: int = 7,
    learn_days: int = 7,
    workdir: Path | None = None,
    lateness: float = 0.0,
    care_history: bool = False,
) -> SeedScore:
    """Simulate and score one seed; ``care_history``: the engine also gets the operator's
    claims history before the period (the simulator's ``care.csv``), as a deployment that
    loads it would."""
    from rempart.sim import SimOptions, simulate

    started = time.perf_counter()
    base = SimOptions().start
    drawn = SimOptions.randomised(
        seed, accounts=accounts, days=days, start=base + timedelta(days=learn_days)
    )
    opts = replace(drawn, start=base, days=learn_days + days)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp)
        result = simulate(opts, out, events=False, care=care_history)
        engine = replay(result, Engine(specs, lateness=lateness))
        truth = result.truth
        lines = result.lines
    alerts = sorted(engine.alerts.values(), key=lambda a: a.detected_at)
    total_days = learn_days + days
    scores, unattributed = score_run(truth, alerts, accounts, total_days, seed)
    fp_acc = fp_accounts(unattributed)
    fp_rules: dict[str, int] = {}
    for a in unattributed:
        fp_rules[a.rule_id] = fp_rules.get(a.rule_id, 0) + 1
    return SeedScore(
        seed=seed,
        lines=lines,
        events=engine.events_seen,
        accounts=accounts,
        days=total_days,
        alerts=len(alerts),
        fp_alerts=len(unattributed),
        fp_accounts=sorted(fp_acc),
        fp_per_1000_account_days=round(1000 * len(fp_acc) / (accounts * total_days), 3),
        seconds=round(time.perf_counter() - started, 1),
        attacks=scores,
        fp_rules=fp_rules,
        care_history=care_history,
    )


def summarise(seeds: list[SeedScore]) -> dict[str, Any]:
    """Per scenario over all seeds: detection rate, worst time to detect and exposure."""
    by: dict[str, list[AttackScore]] = {}
    for s in seeds:
        for a in s.attacks:
            by.setdefault(a.scenario, []).append(a)
    scenarios = {}
    for name, items in sorted(by.items()):
        found = [a for a in items if a.detected]
        ttd = [a.time_to_detect_s for a in found if a.time_to_detect_s is not None]
        exp = [a.exposed_before_detection for a in found if a.exposed_before_detection is not None]
        scenarios[name] = {
            "runs": len(items),
            "detected": len(found),
            "time_to_detect_s_median": sorted(ttd)[len(ttd) // 2] if ttd else None,
            "time_to_detect_s_max": max(ttd) if ttd else None,
            "exposed_before_detection_max": max(exp) if exp else None,
            "exposed_total_max": max(a.exposed_total for a in items),
        }
    acc_days = sum(s.accounts * s.days for s in seeds)
    fp_accounts = sum(len(s.fp_accounts) for s in seeds)
    return {
        "seeds": [s.seed for s in seeds],
        "scenarios": scenarios,
        "fp_accounts": fp_accounts,
        "account_days": acc_days,
        "fp_per_1000_account_days": round(1000 * fp_accounts / acc_days, 3) if acc_days else 0,
    }


def to_json(seeds: list[SeedScore]) -> str:
    return json.dumps(
        {"summary": summarise(seeds), "runs": [asdict(s) for s in seeds]},
        indent=2,
        ensure_ascii=False,
    )
