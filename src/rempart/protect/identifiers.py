"""French identifiers: validate, normalise and explain.

python-stdnum covers the NIR checksum (with Corsica 2A/2B), SIREN, SIRET (incl. La Poste) and
IBAN; this module adds what it does not check: the NIR's sex digit (1/2, NIA 7/8), its month
(01-12, incomplete civil-status months 20-42 and 50-99 flagged), its place (department,
overseas 97x/98x with a 2-digit commune, born abroad 99 + country) and serial; separators
(spaces, dots, dashes; key written apart); RPPS (11 digits, Luhn), ADELI (9, structural: no
public checksum), FINESS (9, Luhn key), French phone numbers, e-mail addresses and dates of
birth written the French way.

Every ``is_valid_*`` is total (never raises); ``validate_*`` returns the normal form or raises
:class:`IdentifierError` (one line, the value masked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.fr import nir as _nir
from stdnum.fr import siret as _siret

from rempart.errors import InputError

_SEPARATORS = re.compile(r"[\s.\-/]")
NIR_SEXES = frozenset("1278")
TEMPORARY_SEXES = frozenset("78")


class IdentifierError(InputError):
    """A value is not a valid identifier of the requested kind."""


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits only: ``str.isdigit`` also takes superscripts and
    other scripts' digits, which ``int`` then refuses or reads (``"0¹"``, ``"٣"``)."""
    return text.isascii() and text.isdigit()


def _strip(text: str) -> str:
    return _SEPARATORS.sub("", text).upper()


def mask(value: str, keep: int = 2) -> str:
    """``2 95 10 99 126 111 93`` -> ``2************93`` style: first char and last ``keep``."""
    compact = value if value.isalnum() else _strip(value)
    if len(compact) <= keep + 1:
        return "*" * len(compact)
    return compact[0] + "*" * (len(compact) - keep - 1) + compact[-keep:]


# --------------------------------------------------------------------------- NIR


def nir_key(body13: str) -> str:
    """Check key of the 13-character NIR body (Corsica 2A -> 19, 2B -> 18)."""
    return _nir.calc_check_digits(body13.upper())


def month_status(month: int) -> str | None:
    """``"known"``, ``"incomplete"`` (20-42, 50-99: civil-status month unknown) or None."""
    if 1 <= month <= 12:
        return "known"
    if 20 <= month <= 42 or 50 <= month <= 99:
        return "incomplete"
    return None


def normalize_nir(text: str) -> str:
    """Remove separators; the result is 15 characters when well formed."""
    return _strip(text)


def _nir_problem(nir: str) -> str | None:
    if len(nir) != 15:
        return "a NIR has 15 characters (13 + a 2-digit key)"
    if nir[0] not in NIR_SEXES:
        return "first digit (sex) must be 1, 2, 7 or 8"
    dept = nir[5:7]
    if not (ascii_digits(nir[:5]) and ascii_digits(nir[7:])) or not (
        ascii_digits(dept) or dept in ("2A", "2B")
    ):
        return "only digits, and 2A/2B for Corsica"
    if month_status(int(nir[3:5])) is None:
        return "month must be 01-12, 20-42 or 50-99"
    if dept == "00":
        return "department 00 does not exist"
    if nir[10:13] == "000":
        return "serial number 000 does not exist"
    if nir_key(nir[:13]) != nir[13:]:
        return "check key does not match"
    return None


def is_valid_nir(text: str) -> bool:
    nir = text if len(text) == 15 else normalize_nir(text)
    if len(nir) != 15 or nir[0] not in NIR_SEXES:
        return False
    if ascii_digits(nir):
        number = int(nir[:13])
    elif nir[5:7] in ("2A", "2B") and ascii_digits(nir[:5]) and ascii_digits(nir[7:]):
        number = int(nir[:5] + ("19" if nir[6] == "A" else "18") + nir[7:13])
    else:
        return False
    month = int(nir[3:5])
    return (
        (1 <= month <= 12 or 20 <= month <= 42 or month >= 50)
        and nir[5:7] != "00"
        and nir[10:13] != "000"
        and 97 - number % 97 == int(nir[13:])
    )


def validate_nir(text: str) -> str:
    nir = normalize_nir(text)
    problem = _nir_problem(nir)
    if problem:
        raise IdentifierError(f"invalid NIR {mask(nir)}: {problem}")
    return nir


@dataclass(frozen=True, slots=True)
class NirInfo:
    """What a NIR says about its holder (nothing beyond what is written in it)."""

    nir: str
    sex: str  # "M" or "F"
    temporary: bool  # NIA (numéro d'immatriculation d'attente), sex digit 7/8
    birth_year: int  # two digits: the century is not written in the NIR
    birth_month: int | None  # None when the civil-status month is incomplete
    month_incomplete: bool
    place_kind: str  # "metropole", "corse", "outre-mer", "etranger"
    department: str | None
    commune: str | None  # INSEE commune code (department + commune part)
    country: str | None  # INSEE country code when born abroad (99xxx)
    serial: str
    key: str

    def explain(self) -> str:
        """One sentence in French (the language of the people concerned)."""
        sex = "homme" if self.sex == "M" else "femme"
        kind = " (NIA, numéro provisoire)" if self.temporary else ""
        month = (
            f"mois {self.birth_month:02d}"
            if self.birth_month
            else "mois inconnu (état civil incomplet)"
        )
        if self.place_kind == "etranger":
            place = f"né(e) à l'étranger, pays INSEE {self.country}"
        elif self.place_kind == "outre-mer":
            place = f"né(e) outre-mer, département {self.department}, commune {self.commune}"
        else:
            place = f"né(e) dans le département {self.department}, commune {self.commune}"
        return f"{sex}{kind}, né(e) en {self.birth_year:02d} ({month}), {place}"


def parse_nir(text: str) -> NirInfo:
    """Validate and explain a NIR: sex, year, month, place of birth."""
    nir = validate_nir(text)
    month = int(nir[3:5])
    incomplete = month_status(month) == "incomplete"
    dept2 = nir[5:7]
    department: str | None
    country = commune = None
    if dept2 == "99":
        kind, department, country = "etranger", None, nir[7:10]
    elif dept2 in ("97", "98"):
        kind, department = "outre-mer", nir[5:8]
        commune = nir[5:10]
    else:
        kind = "corse" if dept2 in ("2A", "2B", "20") else "metropole"
        department, commune = dept2, nir[5:10]
    return NirInfo(
        nir=nir,
        sex="M" if nir[0] in "17" else "F",
        temporary=nir[0] in TEMPORARY_SEXES,
        birth_year=int(nir[1:3]),
        birth_month=None if incomplete else month,
        month_incomplete=incomplete,
        place_kind=kind,
        department=department,
        commune=commune,
        country=country,
        serial=nir[10:13],
        key=nir[13:],
    )


parse = parse_nir


# --------------------------------------------------------------------------- health professionals

_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_ok(digits: str) -> bool:
    """Luhn check of a string of ASCII digits (same result as stdnum.luhn, faster)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += _LUHN_DOUBLE[d] if i & 1 else d
    return total % 10 == 0


def is_valid_rpps(text: str) -> bool:
    """RPPS: 11 digits, starting with 1, Luhn check digit."""
    n = _strip(text)
    return len(n) == 11 and ascii_digits(n) and n[0] == "1" and luhn_ok(n)


def _valid_department(dept: str) -> bool:
    if dept in ("2A", "2B"):
        return True
    return ascii_digits(dept) and (1 <= int(dept) <= 95 or dept in ("97", "98", "99"))


def is_valid_adeli(text: str) -> bool:
    """ADELI: 9 digits, department (2A/2B) + profession code + serial. No public checksum."""
    n = _strip(text)
    return len(n) == 9 and _valid_department(n[:2]) and ascii_digits(n[2:]) and n[2] != "0"


def is_valid_finess(text: str) -> bool:
    """FINESS: 9 characters, department (2A/2B) then digits, Luhn key on the 9 digits."""
    n = _strip(text)
    if len(n) != 9 or not _valid_department(n[:2]) or not ascii_digits(n[2:]):
        return False
    digits = n.replace("2A", "20").replace("2B", "20") if not ascii_digits(n[:2]) else n
    return _luhn.is_valid(digits)


# --------------------------------------------------------------------------- companies, banks


def is_valid_siren(text: str) -> bool:
    n = text if len(text) == 9 and ascii_digits(text) else _strip(text)
    return len(n) == 9 and ascii_digits(n) and luhn_ok(n)


def is_valid_siret(text: str) -> bool:
    """SIRET (14 digits, Luhn; La Poste's 356000000xxxxx by digit sum, as python-stdnum)."""
    n = text if len(text) == 14 and ascii_digits(text) else _strip(text)
    if len(n) != 14 or not ascii_digits(n):
        return False
    if luhn_ok(n) and luhn_ok(n[:9]):
        return True
    return bool(n.startswith("356000000") and _siret.is_valid(n))


_FRENCH_IBAN = re.compile(r"^(?:FR|MC)\d\d\d{10}[0-9A-Z]{11}\d\d$")


_IBAN_LETTERS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


def _iban_mod97(iban: str) -> bool:
    return int((iban[4:] + iban[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def is_valid_iban(text: str) -> bool:
    """IBAN, mod 97. French (and Monaco) IBANs checked here, fast; others by python-stdnum."""
    n = _strip(text)
    if _FRENCH_IBAN.match(n):
        return _iban_mod97(n)
    return bool(_iban.is_valid(n))


# --------------------------------------------------------------------------- contact


def normalize_phone(text: str) -> str | None:
    """French phone number in national form ``0XXXXXXXXX``, or None."""
    n = re.sub(r"[\s.\-()]", "", text)
    if n.startswith("+33"):
        n = "0" + n[3:]
    elif n.startswith("0033"):
        n = "0" + n[4:]
    if n.startswith("00"):
        return None
    if len(n) == 10 and ascii_digits(n) and n[0] == "0" and n[1] != "0":
        return n
    return None


def is_valid_phone(text: str) -> bool:
    return normalize_phone(text) is not None


_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def is_valid_email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.match(text) is not None


# --------------------------------------------------------------------------- dates of birth

FRENCH_MONTHS = {
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
    "septembre": 9, "sept": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11,
    "décembre": 12, "decembre": 12, "déc": 12, "dec": 12,
}  # fmt: skip
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WORD_DATE = re.compile(r"^(\d{1,2})(?:er)?\s+([a-zéû]+)\.?\s+(\d{4})$", re.IGNORECASE)


def parse_birth_date(text: str, *, today: date | None = None) -> date | None:
    """A date of birth written ``12/03/1985``, ``12-03-1985``, ``12.03.1985``, ``1985-03-12``,
    ``12 mars 1985`` or ``1er mars 1985``; None when not a plausible birth date (1890..today)."""
    text = text.strip()
    day = month = year = 0
    if m := _NUMERIC_DATE.match(text):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    elif m := _ISO_DATE.match(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _WORD_DATE.match(text):
        month = FRENCH_MONTHS.get(m[2].lower(), 0)
        day, year = int(m[1]), int(m[3])
    else:
        return None
    try:
        d = date(year, month, day)
    except ValueError:
        return None
    if d.year < 1890 or d > (today or date.today()):
        return None
    return d


def is_valid_birth_date(text: str) -> bool:
    return parse_birth_date(text) is not None


VALIDATORS = {
    "nir": is_valid_nir,
    "rpps": is_valid_rpps,
    "adeli": is_valid_adeli,
    "finess": is_valid_finess,
    "siren": is_valid_siren,
    "siret": is_valid_siret,
    "iban": is_valid_iban,
    "phone": is_valid_phone,
    "email": is_valid_email,
    "dob": is_valid_birth_date,
}
