"""Configuration of incidents and breach documents (section ``cases``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from rempart.settings import StrictModel


class DpoContact(StrictModel):
    name: str = "Délégué à la protection des données"
    email: str = "dpo@example.fr"
    phone: str | None = None
    address: str | None = None


class CasesSettings(StrictModel):
    #: Legal name of the data controller (responsable de traitement).
    controller: str = "Opérateur de tiers payant (exemple)"
    #: Postal address and SIREN of the controller, printed on the Art. 33 draft when set.
    controller_address: str | None = None
    controller_siren: str | None = None
    dpo: DpoContact = DpoContact()
    #: Art. 33(1): the supervisory authority must be notified within this many hours of awareness.
    notification_deadline_hours: float = Field(default=72.0, gt=0)
    #: Which disclosures of the incident's accounts count as exposed: only those made by the
    #: attacker's networks/clients ("actor", exact), or every disclosure in the window ("account",
    #: the conservative upper bound).
    attribution: Literal["actor", "account"] = "actor"
    #: Affected people: leave out beneficiaries the account served before the window.
    exclude_served_before: bool = False
    #: How far before the window "served before" looks (days).
    served_before_days: float = Field(default=90.0, gt=0)
    #: A network or client first used this long before the first alert or later is "new".
    novelty_horizon_days: float = Field(default=7.0, gt=0)
    #: History before the novelty horizon used as the account's usual networks and clients.
    baseline_days: float = Field(default=60.0, gt=0)
    #: IPv4 / IPv6 prefix lengths that define a "network" in windows and timelines.
    ipv4_prefix: int = Field(default=24, ge=8, le=32)
    ipv6_prefix: int = Field(default=48, ge=16, le=128)
    #: Prefix lengths under which an address counts as one of the account's usual networks
    #: (wider than a /24: a box re-addressed by its ISP, a phone moving between cells, stay usual).
    usual_ipv4_prefix: int = Field(default=16, ge=8, le=32)
    usual_ipv6_prefix: int = Field(default=32, ge=16, le=128)
    #: A new network with a usual client is the practitioner on the move, unless what it read
    #: looks like harvesting: at least this many disclosures, and at least this share of them of
    #: people no other network/client of the account read.
    stranger_min_reads: int = Field(default=10, ge=1)
    stranger_share: float = Field(default=0.8, gt=0, le=1)
    #: Alerts on the same entity join an open incident only if they start within this many
    #: days of its last alert.
    merge_gap_days: float = Field(default=7.0, gt=0)
    #: Compact exposure ledger derived from the archive (default: ``<archive_dir>-ledger``).
    ledger_dir: Path | None = None
    #: X25519 public key (PEM) of the DPO: ingestion seals each token's identifier with it.
    dpo_public_key: Path | None = None
