"""End to end on simulated portals: simulator -> ingestion -> detection engine -> incidents.

The affected people of each harvesting incident must equal the simulator's ground truth
exactly: the truth's ``exposed`` NIRs, tokenised with the ingestion key.
"""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from rempart.alerts import Alert
from rempart.cases.evidence import read_care_member, verify_bundle
from rempart.cases.service import Cases, write_evidence
from rempart.cases.settings import CasesSettings
from rempart.config import Config, KeySettings, StateSettings
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.events import Event
from rempart.ingest import read_events
from rempart.ingest.archive import ArchiveWriter
from rempart.ingest.care import load_care_history
from rempart.protect.tokens import Tokenizer, generate_key
from rempart.sim import ScenarioSpec, SimOptions, simulate


@dataclass
class Pipeline:
    root: Path
    cases: Cases
    tok: Tokenizer
    truth: dict
    alerts: list[Alert]
    events: list[Event] = field(repr=False)

    def attack(self, attack_id: str) -> dict:
        return next(a for a in self.truth["attacks"] if a["id"] == attack_id)

    def exposed(self, attack_id: str) -> set[str]:
        return {self.tok(n) for n in self.attack(attack_id)["exposed"]}

    def exposed_by_account(self, attack_id: str) -> dict[str, set[str]]:
        """Per account, what the attack's own requests (its IPs and clients) disclosed."""
        a = self.attack(attack_id)
        ips, uas, accts = set(a["ips"]), set(a["user_agents"]), set(a["accounts"])
        out: dict[str, set[str]] = defaultdict(set)
        for e in self.events:
            if e.discloses and e.user_name in accts and e.source_ip in ips and e.user_agent in uas:
                out[e.user_name].add(e.beneficiary_token)
        return out

    def incidents_of(self, account: str) -> list[int]:
        return [i.id for i in self.cases.store.list_incidents() if account in i.accounts]


def run_pipeline(root: Path, seed: int, scenarios: list[str], care: bool = False) -> Pipeline:
    """With ``care``, the engine also holds the simulator's claims history before the period,
    and the configuration names it (``care_history``)."""
    sim = root / "sim"
    simulate(
        SimOptions(seed=seed, accounts=40, days=10, start=date(2026, 12, 1),
                   scenarios=tuple(ScenarioSpec.parse(s) for s in scenarios)),
        sim, events=False, care=care,
    )  # fmt: skip
    key = generate_key()
    key_file = root / "token.key"
    key_file.write_text(key.dump() + "\n")
    key_file.chmod(0o600)
    tok = Tokenizer(key)
    events = list(read_events([sim / "access.log"], profile="tiers-payant", tokenizer=tok))
    writer = ArchiveWriter(root / "archive")
    writer.add(events)
    writer.close()
    engine = Engine(load_pack("tiers-payant"), lateness=120.0)
    if care:
        engine.add_care_history(load_care_history([sim / "care.csv"], tok).accounts)
    engine.process_many(events)
    engine.flush()
    alerts = list(engine.alerts.values())
    (root / "alerts.jsonl").write_text("".join(json.dumps(a.to_dict()) + "\n" for a in alerts))
    config = Config(
        keys=KeySettings(token_key_file=key_file, token_key_env="REMPART_TEST_NO_SUCH_VAR"),
        state=StateSettings(url=f"sqlite:///{root}/state.db", archive_dir=root / "archive"),
        cases=CasesSettings(),
        care_history=[sim / "care.csv"] if care else [],
    )
    cases = Cases.from_config(config)
    cases.store.open_from_alerts(alerts, actor="engine")
    truth = json.loads((sim / "truth.json").read_text())
    return Pipeline(root, cases, tok, truth, alerts, events)


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory) -> Pipeline:
    """Two mass harvests overlapping in time (each re-reading people the account served
    before), and a slow harvest over three accounts."""
    p = run_pipeline(tmp_path_factory.mktemp("e2e-a"), 5, [
        "mass_harvest:start=2026-12-09T03:00:00,served_before=3,count=3000,rate=100",
        "mass_harvest:start=2026-12-09T03:10:00,served_before=2,count=2500",
        "slow_harvest:start=2026-12-08T10:00:00,n_accounts=3,days=3",
    ])  # fmt: skip
    yield p
    p.cases.close()


@pytest.fixture(scope="module")
def daytime(tmp_path_factory) -> Pipeline:
    """Another seed: a daytime mass harvest while the practice works, and a slow harvest."""
    p = run_pipeline(tmp_path_factory.mktemp("e2e-b"), 11, [
        "mass_harvest:start=2026-12-09T10:30:00,served_before=5,count=2000,rate=120",
        "slow_harvest:start=2026-12-08T09:00:00,n_accounts=4,days=2",
    ])  # fmt: skip
    yield p
    p.cases.close()


def _check_mass_harvest(p: Pipeline, attack_id: str) -> None:
    (account,) = p.attack(attack_id)["accounts"]
    incidents = p.incidents_of(account)
    assert len(incidents) == 1, f"{attack_id}: {account} in incidents {incidents}"
    affected = p.cases.affected(incidents[0])
    exposed = p.exposed(attack_id)
    assert len(exposed) > 1000
    assert affected.tokens == exposed
    assert affected.count == len(exposed)


def test_two_overlapping_mass_harvests_each_get_exactly_their_exposed_people(overlapping):
    a1, a2 = overlapping.attack("mass_harvest-1"), overlapping.attack("mass_harvest-2")
    assert a1["start"] < a2["start"] < a1["end"]  # they do overlap in time
    _check_mass_harvest(overlapping, "mass_harvest-1")
    _check_mass_harvest(overlapping, "mass_harvest-2")


def test_daytime_mass_harvest_on_another_seed_matches_the_truth(daytime):
    _check_mass_harvest(daytime, "mass_harvest-1")


@pytest.mark.parametrize("attack_id", ["mass_harvest-1", "mass_harvest-2"])
def test_patients_the_account_served_before_are_exposed_and_optionally_left_out(
    overlapping, attack_id
):
    p = overlapping
    (account,) = p.attack(attack_id)["accounts"]
    (inc,) = p.incidents_of(account)
    exposed = p.exposed(attack_id)
    window = p.cases.windows(inc)[0]
    served_legitimately = {
        e.beneficiary_token for e in p.events
        if e.discloses and e.user_name == account and e.ts < window.start
    }  # fmt: skip
    also_served = exposed & served_legitimately
    assert also_served  # the attacker re-read people the pharmacist had served
    assert also_served <= p.cases.affected(inc).tokens  # they were exposed all the same
    narrowed = p.cases.affected(inc, exclude_served_before=True)
    assert narrowed.tokens == exposed - also_served
    assert narrowed.excluded == len(also_served)


@pytest.mark.parametrize("fixture", ["overlapping", "daytime"])
def test_slow_harvest_incidents_hold_exactly_what_the_attack_read_from_their_accounts(
    fixture, request
):
    p: Pipeline = request.getfixturevalue(fixture)
    by_account = p.exposed_by_account("slow_harvest-1")
    assert set().union(*by_account.values()) == p.exposed("slow_harvest-1")
    detected = [a for a in p.attack("slow_harvest-1")["accounts"] if p.incidents_of(a)]
    assert detected, "the engine flagged none of the slowly harvested accounts"
    for account in detected:
        (inc,) = p.incidents_of(account)
        affected = p.cases.affected(inc)
        assert affected.tokens == by_account[account], account


def test_evidence_bundle_replays_to_the_same_alert_ids_and_carries_no_raw_nir(overlapping):
    p = overlapping
    (inc,) = p.incidents_of(p.attack("mass_harvest-1")["accounts"][0])
    bundle = p.root / "evidence.tar.gz"
    manifest = write_evidence(p.cases, inc, bundle, actor="analyst")
    incident_alerts = {a.id for a in p.cases.store.get(inc).alerts}
    assert set(manifest["alert_ids"]) == incident_alerts
    assert manifest["inputs"][0]["sha256"] and manifest["rules"]
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
        lines = tar.extractfile("lines.jsonl").read().decode()
    assert {"alerts.jsonl", "lines.jsonl", "ledger.parquet", "manifest.json"} <= names
    assert lines and "/api/v1/beneficiaires/k1." in lines  # NIRs replaced by their tokens
    nirs = p.attack("mass_harvest-1")["exposed"]
    assert not any(n in lines for n in nirs)
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert sorted(report.reproduced) == sorted(incident_alerts)


def test_replay_refuses_inputs_that_are_not_the_cited_ones(overlapping, tmp_path):
    p = overlapping
    (inc,) = p.incidents_of(p.attack("mass_harvest-2")["accounts"][0])
    bundle = tmp_path / "evidence.tar.gz"
    write_evidence(p.cases, inc, bundle, actor="analyst")
    forged = tmp_path / "access.log"
    forged.write_bytes((p.root / "sim" / "access.log").read_bytes()[:-200])
    report = verify_bundle(bundle, [forged])
    assert not report.ok
    assert "SHA-256 differs" in report.problems[0]


@pytest.fixture(scope="module")
def insider_with_care(tmp_path_factory) -> Pipeline:
    """An insider (ten strangers over two days) that only the claims history shows."""
    p = run_pipeline(
        tmp_path_factory.mktemp("e2e-care"),
        5,
        ["insider:start=2026-12-08T09:00:00,count=10,days=2"],
        care=True,
    )
    yield p
    p.cases.close()


def test_evidence_of_an_alert_raised_with_the_claims_history_replays_with_the_key(
    insider_with_care, tmp_path
):
    from rempart.cases.service import token_key

    p = insider_with_care
    (account,) = p.attack("insider-1")["accounts"]
    (alert,) = [a for a in p.alerts if a.rule_id == "TP-INS-004" and a.entity == account]
    assert "with no claim on record" in alert.explanation
    (inc,) = p.incidents_of(account)
    bundle = tmp_path / "evidence.tar.gz"
    manifest = write_evidence(p.cases, inc, bundle, actor="analyst")
    care = manifest["care_history"]
    assert care["member"] == "care_history.json" and care["accounts"] == 40
    assert care["token_key_id"] == p.tok.key_id
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("care_history.json").read()
    # The member holds the relationships as the engine loaded them: hashes, no identifier.
    key_id, held = read_care_member(member)
    loaded = load_care_history([p.root / "sim" / "care.csv"], p.tok).accounts
    assert key_id == p.tok.key_id and held == loaded
    sim_care = (p.root / "sim" / "care.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert not any(row.split(",")[1].encode() in member for row in sim_care[:200]), "no raw NIR"
    replayed = verify_bundle(bundle, key=token_key(p.cases.config))
    assert replayed.ok and not replayed.problems, replayed.problems
    assert alert.id in replayed.reproduced
    alone = verify_bundle(bundle)  # no key: the log alone, and the report says so
    assert not alone.ok and alert.id in alone.missing
    assert "needs the token key" in alone.problems[0]


def test_an_insider_incident_counts_the_strangers_the_account_read_not_its_patients(
    insider_with_care,
):
    """The insider reads from its own workstations: its incident takes every pair of the account
    in the alerts' span, and only the people it had not read before (its strangers)."""
    p = insider_with_care
    attack = p.attack("insider-1")
    (account,) = attack["accounts"]
    (inc,) = p.incidents_of(account)
    affected = p.cases.affected(inc)
    (window,) = affected.windows
    assert window.strangers_only and window.actor_pairs is None
    assert any("initié" in r for r in window.reasoning)
    strangers = p.exposed("insider-1")
    read_in_window = {
        e.beneficiary_token
        for e in p.events
        if e.user_name == account and e.discloses and window.start <= e.ts <= window.end
    }
    caught = strangers & read_in_window
    assert caught and caught <= affected.tokens, "every stranger read in the window is listed"
    assert len(affected.tokens) < len(read_in_window), "its regular patients are not"
