"""Event builders shared by the detection tests: a pharmacy's beneficiary read and claim, with
the fields each test needs overridden by keyword; and one rule loaded from its YAML text."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rempart.detect.loader import load_rules
from rempart.detect.spec import RuleSpec
from rempart.events import Event


def rule_from_yaml(text: str) -> RuleSpec:
    """The rule of one YAML document, loaded (and checked) as a rule directory is."""
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "r.yaml").write_text(text)
        return load_rules([Path(d)])[0]


_PHARMACY = {"source_ip": "81.250.1.2", "account_kind": "pharmacie", "source": "t.log"}


def read_event(ts: float, user: str, token: str, **fields: Any) -> Event:
    """A successful read of the beneficiary ``token`` (a NIR disclosed) by ``user``."""
    base: dict[str, Any] = {
        **_PHARMACY,
        "action": "beneficiary.read",
        "outcome": "success",
        "categories": ("nir",),
        "status": 200,
        "line": 0,
    }
    return Event(ts=ts, user_name=user, beneficiary_token=token, **(base | fields))


def claim_event(ts: float, user: str, **fields: Any) -> Event:
    """A successful claim (``POST``, 201) by ``user``."""
    base: dict[str, Any] = {
        **_PHARMACY,
        "action": "claim.create",
        "outcome": "success",
        "method": "POST",
        "status": 201,
        "line": 0,
    }
    return Event(ts=ts, user_name=user, **(base | fields))


def claimed_days(
    user: str, days: int, patients: int, t0: float, gap: float = 900.0, claim_after: float = 120.0
) -> list[Event]:
    """``days`` days from ``t0`` of ``patients`` regular patients' reads, ``gap`` seconds apart,
    each followed by its claim ``claim_after`` seconds later (an account's usual days)."""
    out: list[Event] = []
    for d in range(days):
        for k in range(patients):
            t = t0 + d * 86400.0 + k * gap
            out += [
                read_event(t, user, f"p{k}", line=k),
                claim_event(t + claim_after, user, line=k),
            ]
    return out
