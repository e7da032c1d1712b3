"""State of the ``surprise`` rules (:mod:`rempart.detect.care`) and their test statistic.

Compact on purpose (one per active account): per-day counters in two small lists used as
rings, recent orphans in parallel arrays, today's episode; and the Beta-binomial tail.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from typing import Any


def beta_binomial_tail(x: int, n: int, a: float, b: float, limit: float = 2.0) -> float:
    """``P(X >= x)`` for ``X ~ BetaBinomial(n, a, b)`` (``a``, ``b`` > 0).

    The first term is computed in log space, the next ones by their ratio; the sum stops once
    the terms no longer matter (they decrease past the mode, and ``x`` is above it when the
    test matters), or as soon as it reaches ``limit`` (then the result is only known to be at
    least ``limit``: enough to say "not significant")."""
    if x <= 0:
        return 1.0
    if x > n:
        return 0.0
    lg = math.lgamma
    log_first = (
        lg(n + 1)
        - lg(x + 1)
        - lg(n - x + 1)
        + lg(x + a)
        + lg(n - x + b)
        - lg(n + a + b)
        - (lg(a) + lg(b) - lg(a + b))
    )
    term = math.exp(log_first)
    total = term
    k = x
    while k < n:
        term *= (n - k) / (k + 1) * (k + a) / (n - k - 1 + b)
        k += 1
        total += term
        if term < total * 1e-12 or total >= limit:
            break
    return min(1.0, total)


class Episode:
    """Today's accusation of one account: what later orphans of the day extend."""

    __slots__ = ("day", "exposed", "first_seen", "p", "peer", "share", "span")

    def __init__(
        self,
        day: int,
        span: int,
        first_seen: float,
        exposed: set[int],
        share: float,
        peer: float | None,
        p: float,
    ):
        self.day = day
        self.span = span
        self.first_seen = first_seen
        self.exposed = exposed
        self.share = share
        self.peer = peer
        self.p = p

    def dump(self) -> list[Any]:
        return [
            self.day,
            self.span,
            self.first_seen,
            sorted(self.exposed),
            self.share,
            self.peer,
            self.p,
        ]

    @classmethod
    def load(cls, item: list[Any]) -> Episode:
        day, span, first_seen, exposed, share, peer, p = item
        return cls(
            int(day),
            int(span),
            float(first_seen),
            {int(h) for h in exposed},
            float(share),
            None if peer is None else float(peer),
            float(p),
        )


class DayCounts:
    """Novel reads and orphans per local day over the last ``size`` days: two small lists
    used as rings (about 600 bytes an account for 31 days, instead of kilobytes of dicts; lists
    rather than ``array``s, whose every read and write is a generic call in compiled code)."""

    __slots__ = ("first", "last", "n", "x")

    def __init__(self, size: int):
        #: Newest day held (-1: none yet).
        self.last = -1
        #: Oldest day ever counted (days before it are all zero: reading stops there).
        self.first = 0
        self.n: list[int] = [0] * size
        self.x: list[int] = [0] * size

    def add(self, day: int, index: int) -> None:
        """Count one novel read (``index`` 0) or orphan (1) on ``day`` (ignored when older
        than the ring)."""
        n, x = self.n, self.x
        size = len(n)
        last = self.last
        if day > last:
            if last < 0:
                self.first = day  # the rings are still all zeros
            else:
                for d in range(max(last + 1, day - size + 1), day + 1):
                    n[d % size] = 0
                    x[d % size] = 0
            self.last = day
        elif day <= last - size:
            return
        elif day < self.first:
            self.first = day
        i = day % size
        if index == 0:
            n[i] = n[i] + 1  # not ``+=``: compiled, that is a generic call on a list item
        else:
            x[i] = x[i] + 1

    def put(self, day: int, n: int, x: int) -> None:
        """Set a day's counts (restoring a checkpoint, oldest day first)."""
        self.add(day, 0)
        i = day % len(self.n)
        if self.get(day) is not None:
            self.n[i], self.x[i] = n, x

    def get(self, day: int) -> tuple[int, int] | None:
        size = len(self.n)
        if day > self.last or day <= self.last - size or self.last < 0:
            return None
        return self.n[day % size], self.x[day % size]

    def first_held(self) -> int:
        """The oldest day the ring still holds (days ``first_held()`` to ``last``; a day
        without counts among them reads as zeros). Compared by hand: compiled, ``max`` of
        three ints is a generic call to the builtin (1,400 instructions a call)."""
        first = self.first
        start = self.last - len(self.n) + 1
        if start > first:
            first = start
        return first if first > 0 else 0

    def rows(self) -> list[tuple[int, int, int]]:
        """``(day, novel reads, orphans)`` of every day held with a count, oldest first."""
        n, x = self.n, self.x
        size = len(n)
        out = []
        for d in range(self.first_held(), self.last + 1):
            i = d % size
            if n[i] or x[i]:
                out.append((d, n[i], x[i]))
        return out


class Orphans:
    """Recent orphans (day, time, beneficiary hash) as three parallel arrays."""

    __slots__ = ("days", "hashes", "times")

    def __init__(self) -> None:
        self.days = array("i")
        self.times = array("d")
        self.hashes = array("I")

    def append(self, day: int, t: float, bh: Any) -> None:
        # ``bh`` an int, typed ``Any`` to be passed on as the object it is (not boxed again).
        self.days.append(day)
        self.times.append(t)
        self.hashes.append(bh)

    def trim(self, keep_after: int, cap: int) -> None:
        """Drop orphans of days up to ``keep_after``, and the oldest beyond ``cap``."""
        days = self.days
        drop = 0
        while drop < len(days) and days[drop] <= keep_after:
            drop += 1
        drop = max(drop, len(days) - cap)
        if drop > 0:
            del self.days[:drop]
            del self.times[:drop]
            del self.hashes[:drop]

    def __iter__(self) -> Iterator[tuple[int, float, int]]:
        return zip(self.days, self.times, self.hashes, strict=True)

    def __len__(self) -> int:
        return len(self.days)
