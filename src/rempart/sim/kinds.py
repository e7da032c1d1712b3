"""Practitioner kinds: volumes, opening hours, patient panels, workstations.

Figures are orders of magnitude from French practice (a pharmacy checks rights 40-150 times a
day; a nurse's round is a few dozen patients; labs peak early in the morning; opticians are busy
on Saturdays; hospitals and health centres work behind one NAT with many accounts), not
statistics of any real portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

#: (start hour, end hour, relative weight) in local time.
Hours = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True, slots=True)
class KindProfile:
    code: str
    label: str
    #: Share of accounts of this kind in the directory.
    share: float
    #: Rights checks on an ordinary weekday: range of the per-account base volume.
    checks: tuple[int, int]
    #: Probability that a successful rights check is followed by a claim (POST /api/v1/actes).
    claim_rate: float
    #: Share of the day's checks for patients new to the account (the long tail).
    new_patient_share: float
    #: Size range of the account's regular patient panel at the start.
    panel: tuple[int, int]
    #: Number of workstations (browsers) per account.
    workstations: tuple[int, int]
    weekday_hours: Hours
    saturday_hours: Hours
    sunday_hours: Hours
    #: Volume factor and probability of being open, for Saturdays and Sundays.
    saturday: tuple[float, float]
    sunday: tuple[float, float]
    #: Accounts of this kind are grouped in organisations behind one NAT (hospital, centre).
    group: tuple[int, int] | None = None


_SHOP = ((8.5, 12.5, 1.0), (12.5, 14.0, 0.25), (14.0, 19.5, 0.9))
_SURGERY = ((8.5, 12.0, 1.0), (12.0, 14.0, 0.1), (14.0, 19.5, 1.0))
_MORNING = ((8.5, 12.5, 1.0),)

# fmt: off
KINDS: dict[str, KindProfile] = {
    "PH": KindProfile(
        "PH", "pharmacie", 0.30, (40, 150), 0.92, 0.08, (600, 2500), (2, 4),
        _SHOP, ((8.5, 12.5, 1.0), (12.5, 14.0, 0.3), (14.0, 19.0, 0.8)),
        ((9.0, 12.5, 1.0), (14.0, 19.0, 0.8)),
        saturday=(0.7, 0.95), sunday=(0.45, 0.08),  # Sundays: pharmacie de garde only
    ),
    "MD": KindProfile(
        "MD", "medecin", 0.25, (10, 35), 0.90, 0.06, (800, 2000), (1, 2),
        _SURGERY, ((9.0, 12.5, 1.0),), ((10.0, 12.0, 1.0),),
        saturday=(0.5, 0.45), sunday=(0.3, 0.02),
    ),
    "LB": KindProfile(
        "LB", "laboratoire", 0.04, (50, 200), 0.95, 0.15, (3000, 6000), (2, 5),
        ((7.0, 10.0, 1.8), (10.0, 12.5, 0.9), (12.5, 14.0, 0.15), (14.0, 18.0, 0.5)),
        ((7.5, 12.0, 1.0),), ((8.0, 11.0, 1.0),),
        saturday=(0.5, 0.9), sunday=(0.2, 0.05),
    ),
    "IN": KindProfile(
        "IN", "infirmier", 0.14, (8, 30), 0.95, 0.05, (60, 200), (1, 1),
        ((6.5, 8.0, 0.4), (10.5, 13.0, 1.0), (13.0, 17.0, 0.2), (17.0, 20.5, 0.9)),
        ((10.5, 13.0, 1.0), (18.0, 20.0, 0.8)), ((10.5, 13.0, 1.0), (18.0, 20.0, 0.6)),
        saturday=(0.8, 0.8), sunday=(0.6, 0.5),
    ),
    "OP": KindProfile(
        "OP", "opticien", 0.05, (3, 12), 0.70, 0.18, (300, 900), (1, 2),
        ((9.5, 12.5, 1.0), (12.5, 14.0, 0.3), (14.0, 19.0, 1.1)), _SHOP, ((10.0, 12.0, 1.0),),
        saturday=(1.3, 0.95), sunday=(0.3, 0.01),
    ),
    "DE": KindProfile(
        "DE", "dentiste", 0.07, (8, 20), 0.85, 0.08, (500, 1500), (1, 2),
        _SURGERY, _MORNING, _MORNING,
        saturday=(0.5, 0.3), sunday=(0.3, 0.01),
    ),
    "KI": KindProfile(
        "KI", "kinesitherapeute", 0.09, (10, 25), 0.90, 0.05, (80, 300), (1, 1),
        ((8.0, 12.5, 1.0), (12.5, 14.0, 0.2), (14.0, 20.0, 1.0)), _MORNING, _MORNING,
        saturday=(0.4, 0.3), sunday=(0.3, 0.01),
    ),
    "HP": KindProfile(
        "HP", "hopital", 0.04, (60, 250), 0.60, 0.20, (2000, 5000), (3, 8),
        ((0.1, 7.5, 0.06), (7.5, 12.5, 1.0), (12.5, 14.0, 0.6), (14.0, 19.0, 0.9),
         (19.0, 23.9, 0.15)),
        ((0.1, 8.0, 0.08), (8.0, 20.0, 1.0), (20.0, 23.9, 0.2)),
        ((0.1, 8.0, 0.1), (8.0, 20.0, 1.0), (20.0, 23.9, 0.25)),
        saturday=(0.45, 1.0), sunday=(0.35, 1.0), group=(5, 25),
    ),
    "CS": KindProfile(
        "CS", "centre_sante", 0.02, (30, 100), 0.90, 0.10, (1000, 3000), (2, 4),
        ((8.5, 12.5, 1.0), (12.5, 13.5, 0.3), (13.5, 19.0, 0.9)), _MORNING, _MORNING,
        saturday=(0.4, 0.6), sunday=(0.2, 0.0), group=(2, 6),
    ),
}
# fmt: on

#: Weekday volume factors Monday..Friday (Mondays are busier).
WEEKDAY_FACTOR = (1.12, 1.0, 0.97, 0.95, 1.0)
MINUTES_PER_DAY = 1440


def minute_weights(hours: Hours) -> list[float]:
    """Cumulative weights over the 1440 minutes of a day (for ``random.choices``)."""
    per_minute = [0.0] * MINUTES_PER_DAY
    for start, end, weight in hours:
        for m in range(int(start * 60), min(int(end * 60), MINUTES_PER_DAY)):
            per_minute[m] = weight
    # Never before 00:05, so a day's sessions never start on the previous day.
    for m in range(5):
        per_minute[m] = 0.0
    return list(accumulate(per_minute))


def opening_minutes(hours: Hours) -> list[tuple[int, int]]:
    """Intervals of the day (in minutes) with a weight of at least a quarter of the peak."""
    peak = max(w for _, _, w in hours)
    return [(int(s * 60), int(e * 60)) for s, e, w in hours if w >= peak / 4]
