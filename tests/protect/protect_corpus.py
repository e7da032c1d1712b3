"""Synthetic corpus with planted French identifiers (valid and look-alike), and its truth.

Used by the scanner tests and by ``bench/protect/``. Every planted identifier is recorded with
its file, line (or table.column) and type, so precision and recall can be measured exactly.
"""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from stdnum import luhn

from rempart.protect.identifiers import nir_key

FIRST = ["Marie", "Jean", "Nathalie", "Pierre", "Sophie", "Luc", "Camille", "Hugo", "Léa", "Karim"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy", "Moreau"]


def make_nir(rng: random.Random, *, corsica: bool = False, abroad: bool = False) -> str:
    sex = rng.choice("1212127")
    year = f"{rng.randrange(100):02d}"
    month = f"{rng.choice([rng.randint(1, 12)] * 9 + [rng.randint(20, 42)]):02d}"
    if corsica:
        place = rng.choice(["2A", "2B"]) + f"{rng.randint(1, 366):03d}"
    elif abroad:
        place = "99" + f"{rng.randint(100, 500):03d}"
    elif rng.random() < 0.1:
        place = rng.choice(["971", "972", "973", "974", "976"]) + f"{rng.randint(1, 40):02d}"
    else:
        place = f"{rng.randint(1, 95):02d}" + f"{rng.randint(1, 800):03d}"
        if place.startswith("20"):
            place = "21" + place[2:]
    body = sex + year + month + place + f"{rng.randint(1, 999):03d}"
    return body + nir_key(body)


def corrupt_key(nir: str) -> str:
    """Same shape, wrong check key: a look-alike the scanner must reject."""
    key = int(nir[13:])
    return nir[:13] + f"{(key % 97) + 1:02d}"


def luhn_complete(prefix: str) -> str:
    return prefix + luhn.calc_check_digit(prefix)


def make_rpps(rng: random.Random) -> str:
    return luhn_complete("10" + "".join(rng.choice("0123456789") for _ in range(8)))


def make_siret(rng: random.Random) -> str:
    siren = luhn_complete(str(rng.randint(10_000_000, 99_999_999)))
    return luhn_complete(siren + f"{rng.randint(1, 9999):04d}")


def make_finess(rng: random.Random) -> str:
    return luhn_complete(f"{rng.randint(1, 95):02d}" + f"{rng.randint(0, 999999):06d}")


def make_phone(rng: random.Random) -> str:
    d = "0" + rng.choice("1234567") + "".join(rng.choice("0123456789") for _ in range(8))
    return rng.choice([d, " ".join(d[i : i + 2] for i in range(0, 10, 2)), "+33" + d[1:]])


def make_iban(rng: random.Random) -> str:
    from stdnum import iban

    bban = "".join(rng.choice("0123456789") for _ in range(23))
    check = iban.calc_check_digits("FR00" + bban)
    return "FR" + check + bban


def written(nir: str, rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return nir
    if style == 1:
        return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    if style == 2:
        return f"{nir[:13]} {nir[13:]}"
    return ".".join([nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]])


@dataclass
class Truth:
    planted: set[tuple[str, str, str]] = field(default_factory=set)  # (location, type, value)
    decoys: int = 0

    def add(self, location: str, kind: str, value: str) -> None:
        self.planted.add((location, kind, value))


def _noise(rng: random.Random) -> str:
    """Numbers that look like identifiers but are not (order ids, timestamps, IPs, amounts)."""
    return rng.choice(
        [
            f"commande {rng.randint(10**14, 10**15 - 1)}",
            f"ts={rng.randint(1_600_000_000_000, 1_800_000_000_000)}",
            f"ip 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
            f"montant {rng.randint(1, 9999)},{rng.randint(0, 99):02d} EUR",
            f"ref {rng.randint(10**8, 10**9 - 1)}",
        ]
    )


def write_corpus(out: Path, *, seed: int = 7, lines: int = 2000) -> Truth:
    """Write access.log, patients.csv, patients.tsv, events.jsonl, dump.log.gz,
    patients.parquet and patients.sqlite under ``out``; return the planted truth."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    truth = Truth()

    def nir_any() -> str:
        r = rng.random()
        return make_nir(rng, corsica=r < 0.15, abroad=0.15 <= r < 0.25)

    # --- a portal access log with NIRs in URLs, half of them valid
    with open(out / "access.log", "w", encoding="utf-8") as fh:
        for i in range(1, lines + 1):
            nir = nir_any()
            ip = f"203.0.113.{rng.randint(1, 254)}"
            if rng.random() < 0.3:
                path = f"/api/beneficiaires/{nir}/droits"
                truth.add(f"access.log:{i}", "nir", nir)
            elif rng.random() < 0.3:
                path = f"/api/beneficiaires/{corrupt_key(nir)}/droits"
                truth.decoys += 1
            else:
                path = f"/static/app.{rng.randint(10**9, 10**10)}.js"
            fh.write(
                f"{ip} - PH{rng.randint(1, 999):04d} [29/Nov/2026:10:{i % 60:02d}:00 +0100] "
                f'"GET {path} HTTP/1.1" 200 {rng.randint(200, 9000)} "-" "Mozilla/5.0" '
                f'"0.0{rng.randint(1, 99)}" "{rng.randint(10**11, 10**12)}"\n'
            )

    # --- an export with named columns
    header = ["id", "nom", "prenom", "nir", "date_naissance", "telephone", "email", "rpps_medecin",
              "finess", "siret_employeur", "iban", "commentaire"]  # fmt: skip
    rows = []
    for i in range(lines // 4):
        nir = nir_any()
        valid = rng.random() < 0.7
        dob = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1930, 2010)}"
        first = rng.choice(FIRST).lower().replace("é", "e")  # addresses are ASCII in practice
        email = f"{first}.{rng.choice(LAST).lower()}{i}@exemple.fr"
        rows.append([str(100000 + i), rng.choice(LAST), rng.choice(FIRST),
                     written(nir, rng) if valid else written(corrupt_key(nir), rng), dob,
                     make_phone(rng), email, make_rpps(rng), make_finess(rng), make_siret(rng),
                     make_iban(rng), _noise(rng)])  # fmt: skip
        rows[-1].append(nir if valid else "")
    for name, sep in (("patients.csv", ","), ("patients.tsv", "\t")):
        with open(out / name, "w", encoding="utf-8") as fh:
            fh.write(sep.join(header) + "\n")
            for n, row in enumerate(rows, start=2):
                fh.write(sep.join(row[:-1]) + "\n")
                _plant_row(truth, f"{name}:{n}", header, row)

    # --- JSON lines and a pretty JSON document
    with open(out / "events.jsonl", "w", encoding="utf-8") as fh:
        for n, row in enumerate(rows, start=1):
            rec = dict(zip(header, row[:-1], strict=True))
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            _plant_row(truth, f"events.jsonl:{n}", header, row)
    with gzip.open(out / "dump.log.gz", "wt", encoding="utf-8") as gz:
        for n, row in enumerate(rows[:100], start=1):
            gz.write(f"ERROR assuré introuvable nir={row[-1] or row[3]} {_noise(rng)}\n")
            if row[-1]:
                truth.add(f"dump.log.gz:{n}", "nir", row[-1])
            else:
                truth.decoys += 1

    # --- Parquet and SQLite: column locations
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {h: [r[k] for r in rows] for k, h in enumerate(header)}
    pq.write_table(pa.table(cols), out / "patients.parquet", row_group_size=200)
    db = sqlite3.connect(out / "patients.sqlite")
    db.execute(f"CREATE TABLE assures ({', '.join(h + ' TEXT' for h in header)})")
    db.executemany(f"INSERT INTO assures VALUES ({','.join('?' * len(header))})",
                   [r[:-1] for r in rows])  # fmt: skip
    db.commit()
    db.close()
    for store in ("patients.parquet", "patients.sqlite"):
        for k, h in enumerate(header):
            kinds = {_COLUMN_KIND.get(h)} - {None}
            if h == "nir" and any(r[-1] for r in rows):
                kinds = {"nir"}
            for kind in kinds:
                truth.add(f"{store}:{'assures.' if store.endswith('sqlite') else ''}{h}", str(kind),
                          "*")  # fmt: skip
            _ = k
    return truth


_COLUMN_KIND = {"date_naissance": "dob", "telephone": "phone", "email": "email",
                "rpps_medecin": "rpps", "finess": "finess", "siret_employeur": "siret",
                "iban": "iban"}  # fmt: skip


def _plant_row(truth: Truth, location: str, header: list[str], row: list[str]) -> None:
    for h, v in zip(header, row[:-1], strict=True):
        kind = _COLUMN_KIND.get(h)
        if kind:
            truth.add(location, kind, v)
    if row[-1]:
        truth.add(location, "nir", row[-1])
    else:
        truth.decoys += 1


def write_gzip_copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, gzip.open(dst, "wb") as fo:
        fo.write(fi.read())


def normal_value(kind: str, value: str) -> str:
    """The normal form the scanner reports for a planted value."""
    from rempart.protect import identifiers as ids

    if kind == "nir":
        return ids.normalize_nir(value)
    if kind == "phone":
        return ids.normalize_phone(value) or value
    if kind == "email":
        return value.lower()
    if kind == "dob":
        d = ids.parse_birth_date(value)
        return d.isoformat() if d else value
    return value.replace(" ", "")


def expected_keys(truth: Truth) -> set[tuple[str, str, str]]:
    """(location, kind, masked sample or '*') the scanner should report."""
    from rempart.protect.identifiers import mask

    out = set()
    for loc, kind, value in truth.planted:
        out.add((loc, kind, "*" if value == "*" else mask(normal_value(kind, value))))
    return out


def found_keys(findings, root: Path) -> set[tuple[str, str, str]]:
    out = set()
    for f in findings:
        src = f.source
        if src.startswith("sqlite:"):
            src = "patients.sqlite"
        else:
            src = str(Path(src).relative_to(root)) if src.startswith(str(root)) else src
        if f.line is not None:
            out.add((f"{src}:{f.line}", f.kind, f.sample))
        else:
            out.add((f"{src}:{f.field}", f.kind, "*"))
    return out


def precision_recall(expected: set, found: set) -> tuple[float, float, set, set]:
    tp = expected & found
    precision = len(tp) / len(found) if found else 1.0
    recall = len(tp) / len(expected) if expected else 1.0
    return precision, recall, expected - found, found - expected
