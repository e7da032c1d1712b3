"""One-pass detection of French identifiers in bytes.

A single combined regular expression (:data:`PREFILTER`: the exact shapes of a NIR, IBAN,
phone number, 9/11/14-digit number, date, and the ``@`` of an e-mail address, with word
boundaries) is run once over a whole chunk by RE2, a linear-time automaton, inside Arrow's C++
kernels; only its matches reach Python. There the digits decide what a match may be
(15 -> NIR, 14 -> SIRET, 11 -> RPPS, 10 -> phone, 9 -> SIREN/FINESS/ADELI, a date -> date of
birth), checksums reject look-alikes, and French context words (just before the value on the
same line, or the column name) raise or lower the confidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from rempart.protect import identifiers as ids

# Matched on the reversed bytes before the "@" (anchored, linear), not with a "$" search.
_EMAIL_LOCAL_REVERSED = re.compile(rb"[A-Za-z0-9._%+\-]{1,64}")
_EMAIL_DOMAIN = re.compile(rb"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}")
_DELETE_SEPARATORS = str.maketrans("", "", " ./-")

# Prefilter, run by RE2 inside Arrow over every line of a chunk at a few hundred MB/s: the exact
# shapes of the identifiers above, with word boundaries, so that identifier-free lines (most of
# a log or a share) never reach Python. Every identifier ``detect`` reports matches it.
_S = r"[ .\-]?"
PREFILTER = (
    r"\bFR\d\d(?: ?[0-9A-Z]{4}){5} ?[0-9A-Z]{3}\b"
    r"|\b[1278]"
    + _S
    + r"\d\d"
    + _S
    + r"\d\d"
    + _S
    + r"(?:\d\d|2[ABab])"
    + _S
    + r"\d{3}"
    + _S
    + r"\d{3}"
    + _S
    + r"\d\d\b"
    r"|(?:\+33 ?|\b0033 ?|\b0)[1-9](?:[ .\-]?\d\d){4}\b"
    r"|\b(?:\d{9}(?:\d\d(?:\d{3})?)?|\d{3} \d{3} \d{3}(?: \d{5})?)\b"
    r"|\b(?:[0-3]\d[/.\-][01]\d[/.\-](?:18|19|20)\d\d|(?:18|19|20)\d\d-[01]\d-[0-3]\d)\b"
    r"|[A-Za-z0-9._%+\-]@[A-Za-z0-9]"
)


_MARK_OPEN, _MARK_CLOSE = b"\x01", b"\x02"


def candidate_spans(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every prefilter match, leftmost-first, non-overlapping.

    RE2 (inside Arrow) wraps each match in control characters in one C++ pass; Python then only
    walks the markers. Data that already holds those characters takes the pure-Python path.
    """
    if not data:
        return
    if _MARK_OPEN in data or _MARK_CLOSE in data:
        yield from _python_spans(data)
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    marked = pc.replace_substring_regex(
        pa.array([data], pa.large_binary()),
        pattern="(" + PREFILTER + ")",
        replacement="\x01\\1\x02",
    )[0].as_py()
    find, pos, shift = marked.find, 0, 0
    while True:
        a = find(_MARK_OPEN, pos)
        if a < 0:
            return
        b = find(_MARK_CLOSE, a)
        yield a - shift, b - shift - 1
        shift += 2
        pos = b + 1


_PY_PREFILTER = re.compile(PREFILTER.encode())


def _python_spans(data: bytes) -> Iterator[tuple[int, int]]:
    for m in _PY_PREFILTER.finditer(data):
        yield m.span()


# Context words, lower-case UTF-8 bytes, looked up just before the value on the same line.
CONTEXT: dict[str, tuple[bytes, ...]] = {
    "nir": (b"nir", b"s\xc3\xa9cu", b"secu", b"insee", b"assur\xc3\xa9", b"assure", b"ssn",
            b"b\xc3\xa9n\xc3\xa9ficiaire", b"beneficiaire", b"immatriculation", b"nss"),
    "rpps": (b"rpps", b"m\xc3\xa9decin", b"medecin", b"prescripteur", b"praticien", b"ps_id"),
    "adeli": (b"adeli", b"infirmi", b"kin\xc3\xa9", b"kine"),
    "finess": (b"finess", b"\xc3\xa9tablissement", b"etablissement", b"h\xc3\xb4pital"),
    "siren": (b"siren", b"entreprise", b"soci\xc3\xa9t\xc3\xa9"),
    "siret": (b"siret", b"employeur", b"entreprise", b"soci\xc3\xa9t\xc3\xa9"),
    "phone": (b"t\xc3\xa9l", b"tel", b"phone", b"portable", b"mobile", b"fixe", b"appel"),
    "dob": (b"naiss", b"n\xc3\xa9 le", b"n\xc3\xa9e le", b"n\xc3\xa9(e)", b"ddn", b"dob",
            b"birth", b"date_nais"),
    "iban": (b"iban", b"rib", b"banc", b"bank"),
}  # fmt: skip
NEGATIVE = (
    b"commande", b"facture", b"ticket", b"order", b"colis", b"suivi", b"transaction",
    b"ref", b"r\xc3\xa9f", b"montant", b"ts=", b"timestamp", b"session", b"trace",
)  # fmt: skip

BASE = {"nir": 0.85, "iban": 0.95, "email": 0.9, "phone": 0.6, "siret": 0.55, "rpps": 0.45,
        "siren": 0.3, "finess": 0.3, "adeli": 0.2, "dob": 0.3}  # fmt: skip
CONTEXT_BOOST = 0.4
NEGATIVE_PENALTY = 0.4
DEFAULT_MIN_CONFIDENCE = 0.5
KINDS = tuple(BASE)


def kinds_from_name(name: str | None) -> frozenset[str]:
    """Kinds suggested by a column or key name (``date_naissance`` -> dob)."""
    if not name:
        return frozenset()
    low = name.lower().encode()
    return frozenset(k for k, words in CONTEXT.items() for w in words if w in low)


class Hit(NamedTuple):
    kind: str
    value: str  # normal form (never stored by the scanner: only its masked form is)
    start: int
    end: int
    confidence: float


_CONTEXT_RE = {
    k: re.compile(b"|".join(re.escape(w) for w in v), re.IGNORECASE) for k, v in CONTEXT.items()
}
_NEGATIVE_RE = re.compile(b"|".join(re.escape(w) for w in NEGATIVE), re.IGNORECASE)
_NO_CONTEXT = re.compile(b"(?!)")
# (kind, -1 | 0 | 1) -> confidence, computed once.
_CONFIDENCE = {
    (k, state): round(
        max(0.0, min(b + state * (CONTEXT_BOOST if state > 0 else NEGATIVE_PENALTY), 0.99)), 2
    )
    for k, b in BASE.items()
    for state in (-1, 0, 1)
}


def has_context(window: bytes, kind: str) -> bool:
    return _CONTEXT_RE.get(kind, _NO_CONTEXT).search(window) is not None


_STATE_CACHE: dict[tuple[bytes, str], int] = {}


def _context_state(window: bytes, kind: str) -> int:
    """+1 context word for ``kind`` before the value, -1 a negative word, 0 neither (cached:
    in logs the same prefix, e.g. ``GET /api/beneficiaires/``, comes back on most lines)."""
    key = (window, kind)
    state = _STATE_CACHE.get(key)
    if state is None:
        if has_context(window, kind):
            state = 1
        elif _NEGATIVE_RE.search(window):
            state = -1
        else:
            state = 0
        if len(_STATE_CACHE) > 100_000:
            _STATE_CACHE.clear()
        _STATE_CACHE[key] = state
    return state


def _context(window: bytes, kind: str, hints: frozenset[str]) -> float:
    if kind in hints:
        return _CONFIDENCE[kind, 1]
    return _CONFIDENCE[kind, _context_state(window, kind)]


def _window(data: bytes, start: int) -> bytes:
    """Up to 40 bytes before ``start`` on the same line."""
    w = data[start - 40 if start > 40 else 0 : start]
    nl = w.rfind(b"\n")
    return w if nl < 0 else w[nl + 1 :]


def _classify_number(digits: str, window: bytes, hints: frozenset[str]) -> tuple[str, float] | None:
    def ctx(kind: str) -> bool:
        return kind in hints or _context_state(window, kind) > 0

    n = len(digits)
    if n == 14:
        return ("siret", _context(window, "siret", hints)) if ids.is_valid_siret(digits) else None
    if n == 11:
        return ("rpps", _context(window, "rpps", hints)) if ids.is_valid_rpps(digits) else None
    if n == 9:
        for kind, ok in (("finess", ids.is_valid_finess), ("adeli", ids.is_valid_adeli),
                         ("siren", ids.is_valid_siren)):  # fmt: skip
            if ctx(kind) and ok(digits):
                return kind, _context(window, kind, hints)
        if ids.is_valid_siren(digits):
            return "siren", _context(window, "siren", hints)
    return None


# Validity of the 15-character values seen lately: a portal log names the same beneficiaries
# again and again.
_NIR_SEEN: dict[str, bool] = {}


def _kind_of_run(raw: str) -> tuple[str, str] | None:
    """``(kind, normal value)`` a run may be, before context (``num``: 9/11/14 digits)."""
    if raw[0] == "F":
        value = raw.replace(" ", "")
        return ("iban", value) if ids.is_valid_iban(value) else None
    if raw[0] == "+":
        phone = ids.normalize_phone(raw)
        return ("phone", phone) if phone else None
    digits = raw if raw.isdigit() else raw.translate(_DELETE_SEPARATORS).upper()
    n = len(digits)
    if n == 15:
        ok = _NIR_SEEN.get(digits)
        if ok is None:
            if len(_NIR_SEEN) > 200_000:
                _NIR_SEEN.clear()
            ok = _NIR_SEEN[digits] = ids.is_valid_nir(digits)
        return ("nir", digits) if ok else None
    if not ids.ascii_digits(digits):
        return None
    if n == 10:
        return ("phone", digits) if digits[0] == "0" and digits[1] != "0" else None
    if n in (9, 11, 14):
        return "num", digits
    if n == 8 and len(raw) == 10:
        return "date", raw
    return None


def detect(
    data: bytes,
    hints: frozenset[str] = frozenset(),
    *,
    hint_at: Callable[[int], frozenset[str]] | None = None,
) -> Iterator[Hit]:
    """Every identifier in ``data`` (any confidence). ``hints``: kinds suggested by the column.

    ``hint_at``: optional ``(pos) -> kinds`` for per-position hints (the CSV column or JSON key
    a value sits in); it is called for plausible identifiers only.
    """
    for start, end in candidate_spans(data):
        if end - start == 3 and data[start + 1] == 64:  # "x@y": an e-mail address around it
            start += 1
            end = start + 1
            local = _EMAIL_LOCAL_REVERSED.match(data[start - 64 if start > 64 else 0 : start][::-1])
            if local is None:
                continue
            dom = _EMAIL_DOMAIN.match(data, end)
            if dom is None:
                continue
            s0 = start - local.end()
            value = data[s0 : dom.end()].decode("ascii", "replace")
            if ids.is_valid_email(value):
                yield Hit("email", value.lower(), s0, dom.end(), BASE["email"])
            continue
        raw = data[start:end].decode("ascii")
        found = _kind_of_run(raw)
        if found is None:
            continue
        kind = found[0]
        if kind == "nir" or kind == "phone" or kind == "iban":  # fast path: no classification
            h = hints if hint_at is None else hints | hint_at(start)
            conf = (_CONFIDENCE[kind, 1] if kind in h
                    else _CONFIDENCE[kind, _context_state(_window(data, start), kind)])  # fmt: skip
            yield Hit(kind, found[1], start, end, conf)
        else:
            yield from _judge(data, raw, start, end, hints, hint_at, found)


def _judge(
    data: bytes,
    raw: str,
    start: int,
    end: int,
    hints: frozenset[str],
    hint_at: Callable[[int], frozenset[str]] | None,
    found: tuple[str, str] | None,
) -> Iterator[Hit]:
    if found is None:
        return
    kind, value = found
    if kind == "date" and end < len(data) and data[end] in b"T:":
        return  # a timestamp, not a date of birth
    window = _window(data, start)
    h = hints if hint_at is None else hints | hint_at(start)
    if kind == "num":
        got = _classify_number(value, window, h)
        if got:
            yield Hit(got[0], value, start, end, got[1])
    elif kind == "date":
        if "dob" in h or _context_state(window, "dob") > 0:
            d = ids.parse_birth_date(raw)
            if d is not None:
                yield Hit("dob", d.isoformat(), start, end, _context(window, "dob", h))
    else:
        yield Hit(kind, value, start, end, _context(window, kind, h))
