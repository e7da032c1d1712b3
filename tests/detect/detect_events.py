"""Event builders shared by the detection tests: a pharmacy's beneficiary read and claim, with
the fields each test needs overridden by keyword."""

from __future__ import annotations

from typing import Any

from rempart.events import Event

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
