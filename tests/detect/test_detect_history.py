"""Per-account beneficiary history: exact in one direction, bounded error in the other."""

from __future__ import annotations

import random
import zlib
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.detect.history import BeneficiaryHistory, _holds, _values, beneficiary_hash
from rempart.protect.tokens import Tokenizer, generate_key


def test_a_beneficiary_read_before_is_never_reported_new_again() -> None:
    hist = BeneficiaryHistory()
    hashes = [beneficiary_hash(f"k1.{i * 7919:020x}") for i in range(5000)]
    assert all(hist.observe("PH1", h) for h in hashes)  # distinct by construction
    assert not any(hist.observe("PH1", h) for h in hashes)
    hist.compact()
    assert not any(hist.observe("PH1", h) for h in hashes)
    assert hist.size("PH1") == 5000


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=600))
def test_history_matches_an_exact_set_on_hashes(values: list[int]) -> None:
    hist, exact = BeneficiaryHistory(), set()
    for v in values:
        assert hist.observe("A", v) == (v not in exact)
        exact.add(v)
    restored = BeneficiaryHistory()
    restored.load(hist.dump())
    assert all(restored.seen("A", v) for v in exact)


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=9000))
def test_history_stays_exact_over_many_batched_merges_and_a_restart(seed: int, cut: int) -> None:
    # Thousands of distinct reads with repeats: several merges of growing size, a dump and
    # load at ``cut``, and the history must still answer exactly and stay sorted and unique.
    rng = random.Random(seed)
    values = [rng.randrange(12_000) for _ in range(9000)]
    hist, exact = BeneficiaryHistory(), set()
    for i, v in enumerate(values):
        if i == cut:
            restored = BeneficiaryHistory()
            restored.load(hist.dump())
            hist = restored
        assert hist.observe("A", v) == (v not in exact)
        exact.add(v)
    assert hist.size("A") == len(exact)
    hist.compact()
    arr = list(_values(hist.accounts["A"].arr))
    assert arr == sorted(exact)


def test_32_bit_hash_collisions_stay_within_the_documented_bound() -> None:
    tok = Tokenizer(generate_key())
    n = 100_000
    tokens = [tok.token(f"1{i:014d}") for i in range(n)]
    distinct = len({beneficiary_hash(t) for t in tokens})
    # Expected colliding pairs n^2 / 2^33 = 1.16; more than 10 has probability < 1e-6.
    assert n - distinct <= 10


@given(
    st.text(max_size=24)
    | st.from_regex(r"\Ak1\.[0-9a-fA-F]{8,20}\Z")
    | st.from_regex(r"\A.{0,6}[ +_0-9a-fA-FxX-]{8}\Z")
)
def test_beneficiary_hash_is_the_last_eight_hex_digits_as_int_reads_them_else_a_crc(
    token: str,
) -> None:
    """The compiled fast path for plain hex digits agrees with ``int(token[-8:], 16)`` on every
    token, including what ``int`` also accepts (signs, spaces, underscores, ``0x``)."""
    try:
        expected = int(token[-8:], 16)
    except ValueError:
        expected = zlib.crc32(token.encode())
    assert beneficiary_hash(token) == expected


_U32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(st.sets(_U32 | st.sampled_from([0, 1, 2**31, 2**32 - 1]), max_size=300), st.lists(_U32))
def test_the_compiled_search_of_a_merged_history_agrees_with_a_set(
    values: set[int], probes: list[int]
) -> None:
    run = array("I", sorted(values)).tobytes()
    for h in [*probes, *values, 0, 2**32 - 1]:
        assert _holds(run, h) == (h in values)


@given(
    st.lists(st.tuples(_U32, st.integers(min_value=1, max_value=400)), min_size=1, max_size=4),
    st.lists(st.integers(min_value=-5, max_value=2**32 + 5)),
)
def test_the_search_is_exact_on_values_far_from_uniform(
    clusters: list[tuple[int, int]], probes: list[int]
) -> None:
    """The search starts where a uniform hash would sit; runs of consecutive values (clusters)
    put ``h`` hundreds of places away from that guess, in either direction."""
    values = {v for start, k in clusters for v in range(start, min(start + k, 2**32))}
    run = array("I", sorted(values)).tobytes()
    around = [v + d for v in (min(values), max(values)) for d in (-1, 0, 1)]
    for h in [*probes, *values, *around, 0, 2**32 - 1]:
        assert _holds(run, h) == (h in values)


def test_a_checkpointed_history_that_is_not_whole_32_bit_values_is_refused() -> None:
    with pytest.raises(ValueError, match="history of PH1: 6 bytes"):
        BeneficiaryHistory().load({"PH1": b"\x01\x00\x00\x00\x02\x00"})
