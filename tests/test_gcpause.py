"""The collector pause used by the command line and replays (``rempart.gcpause``)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from rempart.gcpause import paused


@pytest.mark.parametrize("enabled", [True, False])
def test_when_a_block_is_paused_then_the_collector_is_off_inside_and_restored_after(
    enabled: bool,
) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with paused():
            assert not gc.isenabled()
            with paused():  # nested: the inner exit leaves it off
                pass
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_when_the_block_raises_then_the_collector_is_still_restored() -> None:
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_when_frozen_then_the_objects_made_in_the_block_are_never_scanned_again() -> None:
    # In a fresh interpreter: freezing is process-wide.
    code = (
        "import gc\n"
        "from rempart.gcpause import paused\n"
        "before = gc.get_freeze_count()\n"
        "with paused(freeze=True):\n"
        "    kept = [[i] for i in range(10_000)]\n"
        "assert gc.isenabled()\n"
        "assert gc.get_freeze_count() >= before + 10_000, gc.get_freeze_count()\n"
        "assert gc.get_count()[0] < 100, gc.get_count()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
