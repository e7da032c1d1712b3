"""The exposure ledger: who read whose record, kept in step with the archive."""

from __future__ import annotations

import shutil

from cases_helpers import BOT_UA, DAY, HOUR, LEGIT_UA, T0, Log, write_archive

from rempart.cases.ledger import ExposureLedger


def test_who_read_whose_record_between_two_times_is_answered_with_origin(tmp_path):
    log = Log("portal.log")
    log.read("PH0001", "k1.A", T0 + HOUR, "192.0.2.1", LEGIT_UA)
    log.read("PH0002", "k1.A", T0 + DAY + HOUR, "192.0.2.2", LEGIT_UA)
    log.read("PH0002", "k1.B", T0 + DAY + 2 * HOUR, "192.0.2.2", LEGIT_UA)
    log.read("PH0003", "k1.A", T0 + 2 * DAY, "192.0.2.3", LEGIT_UA, ok=False)  # 404: nothing shown
    log.login("PH0003", T0 + 2 * DAY, "192.0.2.3", LEGIT_UA)
    write_archive(log.events, tmp_path / "archive")
    ledger = ExposureLedger(tmp_path / "archive")
    rows = ledger.disclosures(start=T0, end=T0 + 3 * DAY, tokens=["k1.A"]).to_pylist()
    assert [(r["user_name"], r["source"], r["line"]) for r in rows] == [
        ("PH0001", "portal.log", 1), ("PH0002", "portal.log", 2),
    ]  # fmt: skip
    assert rows[0]["categories"][3] == "nir"
    later = ledger.disclosures(start=T0 + DAY, end=T0 + 3 * DAY, accounts=["PH0002"])
    assert later.column("beneficiary_token").to_pylist() == ["k1.A", "k1.B"]
    assert ledger.disclosures(start=T0 + 3 * DAY, end=T0 + 4 * DAY).num_rows == 0
    ledger.close()


def test_ledger_follows_new_archive_parts_and_dropped_days(tmp_path):
    archive = tmp_path / "archive"
    first = Log("a.log")
    first.read("PH0001", "k1.A", T0 + HOUR, "192.0.2.1", LEGIT_UA)
    first.read("PH0001", "k1.Z", T0 + 3 * DAY, "192.0.2.1", LEGIT_UA)
    write_archive(first.events, archive, part=0)
    ledger = ExposureLedger(archive, sync_every=0)
    assert ledger.disclosures(start=T0, end=T0 + DAY).num_rows == 1
    more = Log("b.log")
    more.read("PH0009", "k1.B", T0 + 2 * HOUR, "203.0.113.7", BOT_UA)
    write_archive(more.events, archive, part=1)  # follow mode: a new part in the same day
    tokens = ledger.disclosures(start=T0, end=T0 + DAY).column("beneficiary_token").to_pylist()
    assert tokens == ["k1.A", "k1.B"]
    shutil.rmtree(archive / "day=2026-03-04")  # retention removed a day
    assert ledger.sync() == 0
    assert ledger.disclosures(start=T0 + 2 * DAY, end=T0 + 4 * DAY).num_rows == 0
    assert not (ledger.ledger_dir / "day=2026-03-04").exists()
    ledger.close()
