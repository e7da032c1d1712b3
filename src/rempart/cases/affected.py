"""Affected people of an incident: exact, from the exposure ledger.

Affected = distinct beneficiaries disclosed to the incident's accounts within each account's
compromise window (restricted to the actor's networks/clients under "actor" attribution),
optionally leaving out, per account, those the account had served in the
``served_before_days`` before its window. Counts by data category (people and records) and the
number of records (disclosure events) come with it.

The CSV export carries tokens only; turning tokens back into NIRs is the DPO's job
(:mod:`rempart.cases.vault`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rempart.cases.ledger import ExposureLedger
from rempart.cases.window import AccountWindow, iso
from rempart.errors import InputError

CSV_COLUMNS = ("token", "first_disclosed", "last_disclosed", "records", "categories", "accounts")


@dataclass(frozen=True, slots=True)
class AffectedPerson:
    token: str
    first_disclosed: float
    last_disclosed: float
    records: int
    categories: tuple[str, ...]
    accounts: tuple[str, ...]

    def to_row(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "first_disclosed": iso(self.first_disclosed),
            "last_disclosed": iso(self.last_disclosed),
            "records": self.records,
            "categories": ";".join(self.categories),
            "accounts": ";".join(self.accounts),
        }


@dataclass(slots=True)
class AffectedPeople:
    incident_id: int
    attribution: str
    exclude_served_before: bool
    windows: list[AccountWindow]
    people: list[AffectedPerson] = field(default_factory=list)
    #: Disclosure events counted (after exclusion).
    records: int = 0
    #: Beneficiaries left out because the account served them before its window.
    excluded: int = 0
    #: category -> distinct people / disclosure events.
    people_by_category: dict[str, int] = field(default_factory=dict)
    records_by_category: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.people)

    @property
    def tokens(self) -> set[str]:
        return {p.token for p in self.people}

    def summary(self) -> dict[str, Any]:
        return {
            "incident": self.incident_id,
            "people": self.count,
            "records": self.records,
            "attribution": self.attribution,
            "exclude_served_before": self.exclude_served_before,
            "excluded_served_before": self.excluded,
            "people_by_category": dict(self.people_by_category),
            "records_by_category": dict(self.records_by_category),
            "windows": [w.to_dict() for w in self.windows],
        }

    def write_csv(self, path: Path) -> int:
        """Write the export (tokens, never NIRs); returns the number of rows."""
        try:
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                for person in self.people:
                    writer.writerow(person.to_row())
        except OSError as exc:
            raise InputError(f"cannot write the export: {exc.strerror}", where=str(path)) from None
        return len(self.people)


_AGGREGATE = """
    SELECT beneficiary_token AS token, epoch(min(ts)) AS first, epoch(max(ts)) AS last,
           count(*) AS records, list_sort(list_distinct(flatten(list(categories)))) AS cats,
           list_sort(list_distinct(list(user_name))) AS accounts
    FROM rows GROUP BY beneficiary_token ORDER BY first, token
"""
_BY_CATEGORY = """
    SELECT cat, count(DISTINCT beneficiary_token) AS people, count(*) AS records
    FROM (SELECT beneficiary_token, unnest(categories) AS cat FROM rows)
    GROUP BY cat ORDER BY cat
"""


def compute_affected(
    ledger: ExposureLedger,
    incident_id: int,
    windows: Sequence[AccountWindow],
    *,
    attribution: str,
    exclude_served_before: bool,
    served_before_days: float,
) -> AffectedPeople:
    out = AffectedPeople(incident_id, attribution, exclude_served_before, list(windows))
    rows = ledger.scoped_disclosures([w.actor_filter(attribution) for w in windows])
    # An insider's window counts only its strangers, whatever the option says (see
    # ``AccountWindow.strangers_only``).
    excluding = [w for w in windows if exclude_served_before or w.strangers_only]
    if excluding and rows.num_rows:
        served: set[tuple[str, str]] = set()
        for w in excluding:
            served |= {
                (w.account, t) for t in ledger.served_before(w.account, w.start, served_before_days)
            }
        if served:
            users = rows.column("user_name").to_pylist()
            toks = rows.column("beneficiary_token").to_pylist()
            keep = [(u, t) not in served for u, t in zip(users, toks, strict=True)]
            before = {t for t, k in zip(toks, keep, strict=True) if not k}
            rows = rows.filter(pa.array(keep, pa.bool_()))
            out.excluded = len(before - set(rows.column("beneficiary_token").to_pylist()))
    if rows.num_rows == 0:
        return out
    con = duckdb.connect(":memory:")
    try:
        con.register("rows", rows)
        people = con.execute(_AGGREGATE).fetchall()
        by_cat = con.execute(_BY_CATEGORY).fetchall()
    finally:
        con.close()
    out.people = [
        AffectedPerson(tok, first, last, int(n), tuple(cats), tuple(accts))
        for tok, first, last, n, cats, accts in people
    ]
    out.records = rows.num_rows
    out.people_by_category = {cat: int(p) for cat, p, _ in by_cat}
    out.records_by_category = {cat: int(r) for cat, _, r in by_cat}
    return out
