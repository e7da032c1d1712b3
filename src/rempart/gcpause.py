"""Pausing Python's cyclic garbage collector around bulk work that makes no garbage cycles.

The collector runs after every few hundred new containers and scans the young ones, then
every tenth time the older ones too. Imports and a replay make hundreds of thousands of
long-lived containers and almost no cycles, so those scans find nothing: 134 collections
(0.14 CPU-s) in the start-up and rule loading of ``rempart hunt`` alone, and 2 to 3% of a
replay's CPU time. ``paused()`` turns the collector off for a block and restores its state after.

Turned back on, the collector first scans everything made while it was off (100 ms after a
replay of the 1M-line log). ``paused(freeze=True)`` moves every object tracked so far to the
collector's permanent generation first (``gc.freeze``), so none of them is scanned again: for
the command line's start-up imports, and for a batch command's state once it is done. Cycles
among frozen objects are never collected: not for a library caller that runs many replays.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """The cyclic collector off inside the block; on again after only if it was on before
    (after ``gc.freeze()`` when ``freeze``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
