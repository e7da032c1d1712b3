"""Legitimate traffic looks like practitioners at work (one week, no attacks)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any


def _nir(line: Any) -> str | None:
    parts = line.path.split("/")
    return parts[4] if len(parts) == 6 and parts[3] == "beneficiaires" else None


def _daily_reads(run: Any) -> dict[tuple[str, int], int]:
    out: Counter[tuple[str, int]] = Counter()
    for ln in run.lines:
        if _nir(ln):
            out[(ln.user, ln.time.weekday())] += 1
    return out


def test_pharmacies_check_40_to_150_rights_on_weekdays(legit_run: Any) -> None:
    daily = _daily_reads(legit_run)
    pharmacies = [a for a, (kind, _) in legit_run.directory.items() if kind == "pharmacie"]
    per_account = [statistics.median(daily[(a, wd)] for wd in range(5)) for a in pharmacies]
    assert 40 <= statistics.median(per_account) <= 150
    doctors = [a for a, (kind, _) in legit_run.directory.items() if kind == "medecin"]
    doc = statistics.median(statistics.median(daily[(a, wd)] for wd in range(5)) for a in doctors)
    assert doc < statistics.median(per_account)


def test_saturdays_are_lighter_and_sundays_mostly_closed(legit_run: Any) -> None:
    by_weekday = Counter(ln.time.weekday() for ln in legit_run.lines if _nir(ln))
    assert by_weekday[5] < 0.8 * by_weekday[1]
    assert by_weekday[6] < 0.25 * by_weekday[1]
    sunday_kinds = Counter(
        legit_run.directory[ln.user][0] for ln in legit_run.lines if _nir(ln)
        and ln.time.weekday() == 6
    )  # fmt: skip
    assert sunday_kinds  # pharmacies de garde, hospitals, nurses
    assert sunday_kinds["hopital"] > 0 or sunday_kinds["infirmier"] > 0


def test_lunch_dip_and_closed_nights(legit_run: Any) -> None:
    weekday = [ln for ln in legit_run.lines if _nir(ln) and ln.time.weekday() < 5]
    by_hour = Counter(ln.time.hour for ln in weekday)
    assert by_hour[12] + by_hour[13] < 0.6 * (by_hour[10] + by_hour[11])
    night = sum(by_hour[h] for h in (1, 2, 3, 4))
    assert night < 0.01 * len(weekday)
    night_kinds = {legit_run.directory[ln.user][0] for ln in weekday if ln.time.hour in (1, 2, 3)}
    assert night_kinds <= {"hopital"}


def test_patients_recur_with_a_long_tail_of_new_ones(legit_run: Any) -> None:
    pharmacies = {a for a, (k, _) in legit_run.directory.items() if k == "pharmacie"}
    reads: dict[str, list[str]] = defaultdict(list)
    for ln in legit_run.lines:
        if ln.user in pharmacies and (n := _nir(ln)):
            reads[ln.user].append(n)
    shares = []
    for nirs in reads.values():
        counts = Counter(nirs)
        shares.append(sum(c for c in counts.values() if c > 1) / len(nirs))
    assert statistics.median(shares) > 0.3  # regulars come back within the week
    assert statistics.median(shares) < 0.95  # ...but many are seen once


def test_rights_checks_are_usually_followed_by_a_claim_within_minutes(legit_run: Any) -> None:
    reads = [ln for ln in legit_run.lines if _nir(ln) and ln.status == 200]
    claims = [ln for ln in legit_run.lines if ln.method == "POST" and ln.path == "/api/v1/actes"]
    assert 0.7 < len(claims) / len(reads) < 0.97
    last_read: dict[str, Any] = {}
    late = 0
    for ln in legit_run.lines:
        if _nir(ln) and ln.status == 200:
            last_read[ln.sid] = ln.time
        elif (
            ln.method == "POST"
            and ln.path == "/api/v1/actes"
            and ln.time - last_read[ln.sid] > timedelta(minutes=10)
        ):
            late += 1
    assert late < 0.05 * len(claims)


def test_sessions_logins_typos_workstations_and_shared_nat(legit_run: Any) -> None:
    lines = legit_run.lines
    logins = [ln for ln in lines if ln.path == "/auth/login"]
    failed = [ln for ln in logins if ln.status == 401]
    assert 0 < len(failed) < 0.1 * len(logins)
    ok_after = {(ln.user, ln.ip) for ln in logins if ln.status == 200}
    assert all((ln.user, ln.ip) in ok_after for ln in failed)  # a typo, then the right one
    anonymous = [ln for ln in lines if ln.path.startswith(("/app/", "/static/"))]
    assert anonymous and all(ln.user == "-" for ln in anonymous)
    assert all(ln.sid != "-" for ln in lines if ln.path.startswith("/api/"))
    uas: dict[str, set[str]] = defaultdict(set)
    ips_of: dict[str, set[str]] = defaultdict(set)
    users_of_ip: dict[str, set[str]] = defaultdict(set)
    for ln in lines:
        if ln.user != "-":
            uas[ln.user].add(ln.ua)
            ips_of[ln.user].add(ln.ip)
            users_of_ip[ln.ip].add(ln.user)
    assert sum(len(v) > 1 for v in uas.values()) > 0.3 * len(uas)  # several workstations
    assert any(len(v) > 1 for v in ips_of.values())  # IP changes (DHCP, mobile)
    hospitals = [a for a, (k, _) in legit_run.directory.items() if k == "hopital"]
    shared = [ip for ip, users in users_of_ip.items() if len(users & set(hospitals)) > 1]
    assert shared  # hospital accounts behind one NAT
    orgs = Counter(legit_run.directory[a][1] for a in hospitals)
    assert max(orgs.values()) > 1  # hospital accounts share an organisation


def test_directory_names_kinds_and_finess_like_ids(legit_run: Any) -> None:
    for account, (kind, org) in legit_run.directory.items():
        assert account[:2] in ("PH", "MD", "LB", "IN", "OP", "DE", "KI", "HP", "CS")
        assert account[2:].isdigit() and len(account) == 6
        assert len(org) == 9 and org.isdigit()
        assert kind
    total = sum(1 for _ in legit_run.directory)
    assert total == 150


#: Refused attempts of one forgotten password come at most this far apart.
_SECONDS_40 = timedelta(seconds=40)


def _request(ln: Any) -> tuple[Any, ...]:
    return (ln.user, ln.time, ln.ip, ln.ua, ln.method, ln.path, ln.status, ln.sid)


def test_forgotten_passwords_add_refused_attempts_and_leave_the_rest_as_it_was(
    legit_run: Any, run_sim: Any, tmp_path: Any
) -> None:
    """Some users no longer know their password: two to four refused attempts seconds apart,
    and their login only minutes to hours later. Drawn from a stream of their own, so the same
    simulation without them is the same traffic line for line."""
    assert legit_run.opts.forgotten_share == 0.005  # the default
    without = run_sim(replace(legit_run.opts, forgotten_share=0.0), tmp_path)
    assert without.truth["options"]["forgotten_share"] == 0.0
    extra = Counter(_request(ln) for ln in legit_run.lines)
    extra.subtract(_request(ln) for ln in without.lines)
    assert -extra == Counter()  # nothing of the traffic without them is missing
    added = sorted(extra.elements())  # by account, then time
    assert added and {r[4:7] for r in added} == {("POST", "/auth/login", 401)}
    episodes: list[list[tuple[Any, ...]]] = []
    for r in added:
        if episodes and episodes[-1][-1][0] == r[0] and r[1] - episodes[-1][-1][1] <= _SECONDS_40:
            episodes[-1].append(r)
        else:
            episodes.append([r])
    logins = sorted(
        (ln.time, ln.user, ln.ip, ln.ua)
        for ln in legit_run.lines
        if ln.path == "/auth/login" and ln.status == 200
    )
    assert 0.002 * len(logins) < len(episodes) < 0.01 * len(logins)  # 0.5% of sessions
    assert {len(e) for e in episodes} <= {2, 3, 4}
    for episode in episodes:
        user, t, ip, ua = episode[-1][:4]
        assert {r[2:4] for r in episode} == {(ip, ua)}  # one workstation
        later = next(lt for lt, *who in logins if lt > t and who == [user, ip, ua])
        assert timedelta(minutes=5) <= later - t <= timedelta(hours=4)
