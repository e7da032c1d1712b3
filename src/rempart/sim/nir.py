"""Synthetic but structurally valid NIR (French social security numbers).

A NIR is 15 characters: sex (1), year of birth (2), month (2), department (2, ``2A``/``2B`` for
Corsica, ``97`` + first commune digit overseas, ``99`` born abroad), commune (3), order number
(3), then the key: ``97 - (n mod 97)`` where ``n`` is the first 13 characters read as an integer,
Corsica's ``2A``/``2B`` replaced by ``19``/``18`` for the computation.

The simulator only ever makes synthetic identifiers; nothing here looks anyone up.
"""

from __future__ import annotations

import random
import re

NIR_RE = re.compile(r"^[12][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6}[0-9]{2}$")

#: Metropolitan departments (``20`` is not used since 1976: Corsica is 2A/2B).
METRO_DEPARTMENTS: tuple[str, ...] = tuple(f"{d:02d}" for d in range(1, 96) if d != 20)
CORSICA_DEPARTMENTS: tuple[str, ...] = ("2A", "2B")
#: Overseas: department ``97`` and the first commune digit (971 Guadeloupe ... 976 Mayotte).
OVERSEAS_PREFIXES: tuple[str, ...] = ("971", "972", "973", "974", "976")


def nir_key(body: str) -> int:
    """Control key of the 13-character NIR ``body`` (Corsica handled)."""
    dept = body[5:7]
    if dept == "2A":
        body = body[:5] + "19" + body[7:]
    elif dept == "2B":
        body = body[:5] + "18" + body[7:]
    return 97 - (int(body) % 97)


def make_nir(body: str) -> str:
    """Append the control key to a 13-character body."""
    return f"{body}{nir_key(body):02d}"


def is_valid_nir(nir: str) -> bool:
    """True when ``nir`` has the NIR shape and its control key is right."""
    if not NIR_RE.match(nir):
        return False
    return int(nir[13:]) == nir_key(nir[:13])


_ABROAD = ("109", "111", "127", "131", "134", "139", "212", "350", "351", "352")
_TWO = tuple(f"{i:02d}" for i in range(100))
_THREE = tuple(f"{i:03d}" for i in range(1000))


def random_nir_body(
    rng: random.Random,
    *,
    sex: int | None = None,
    year: int | None = None,
    month: int | None = None,
    department: str | None = None,
) -> str:
    """A random 13-character NIR body; fields not given are drawn from ``rng``.

    Only ``rng.random()`` is used (cheap): populations of millions are drawn with it.
    """
    rand = rng.random
    s = sex if sex is not None else (1 if rand() < 0.5 else 2)
    yy = (year if year is not None else 1925 + int(rand() * 101)) % 100
    mm = month if month is not None else 1 + int(rand() * 12)
    dept = department if department is not None else random_department(rng)
    if len(dept) == 3:  # overseas: 97 + first commune digit
        place = dept + _TWO[1 + int(rand() * 99)]
    elif dept == "99":  # born abroad: 99 + INSEE country code
        place = "99" + _ABROAD[int(rand() * len(_ABROAD))]
    else:
        place = dept + _THREE[1 + int(rand() * 899)]
    return f"{s}{_TWO[yy]}{_TWO[mm]}{place}{_THREE[1 + int(rand() * 999)]}"


def random_department(rng: random.Random) -> str:
    """A department of birth: mostly metropolitan, some Corsica, overseas and abroad."""
    r = rng.random()
    if r < 0.015:
        return CORSICA_DEPARTMENTS[int(r / 0.0075)]
    if r < 0.045:
        return OVERSEAS_PREFIXES[int((r - 0.015) / 0.006)]
    if r < 0.095:
        return "99"
    return METRO_DEPARTMENTS[int((r - 0.095) / 0.905 * len(METRO_DEPARTMENTS))]


def random_nir(rng: random.Random) -> str:
    """A random valid NIR."""
    return make_nir(random_nir_body(rng))
