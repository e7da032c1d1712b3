"""NIR-shaped tokens: reversible, deterministic, and never a valid NIR (proved by hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protect_strategies import nirs
from stdnum.fr import nir as stdnum_nir

from rempart.errors import KeyMaterialError
from rempart.protect import identifiers as ids
from rempart.protect.fpe import IMPOSSIBLE_MONTHS, NirFpe
from rempart.protect.tokens import TokenKey

KEY = TokenKey("k1", bytes(range(32)))
OTHER = TokenKey("k2", bytes(range(1, 33)))
FPE = NirFpe(KEY)


@settings(max_examples=300)
@given(nirs())
def test_a_token_is_never_a_valid_nir_for_us_nor_for_stdnum(nir):
    token = FPE.tokenize(nir)
    assert len(token) == 15 and token.isdigit()
    assert token[3:5] in IMPOSSIBLE_MONTHS
    assert not ids.is_valid_nir(token)
    assert not stdnum_nir.is_valid(token)  # checksum-only validators reject it too


@settings(max_examples=300)
@given(nirs())
def test_tokens_round_trip_with_the_key(nir):
    assert FPE.detokenize(FPE.tokenize(nir)) == nir


@given(nirs())
def test_tokens_are_deterministic_and_purpose_bound(nir):
    assert FPE.tokenize(nir) == NirFpe(KEY).tokenize(nir)
    assert NirFpe(KEY, "export-b").tokenize(nir) != FPE.tokenize(nir)


@given(st.lists(nirs(), min_size=2, max_size=30, unique=True))
def test_distinct_nirs_give_distinct_tokens(values):
    assert len({FPE.tokenize(v) for v in values}) == len(values)


def test_every_writing_of_one_nir_gives_one_token():
    assert FPE.tokenize("2 95 10 99 126 111 93") == FPE.tokenize("295109912611193")


def test_corsica_round_trips():
    for nir in ("253072B07300470", "253072A07300443"):
        assert FPE.detokenize(FPE.tokenize(nir)) == nir


def test_a_real_nir_is_not_accepted_as_a_token():
    with pytest.raises(KeyMaterialError, match="not a NIR-shaped token"):
        FPE.detokenize("295109912611193")


def test_a_token_with_digits_of_another_kind_is_refused_in_one_error() -> None:
    token = FPE.tokenize("295109912611193")
    with pytest.raises(KeyMaterialError, match="not a NIR-shaped token"):
        FPE.detokenize(token[:13] + "\u00b9\u00b2")  # superscripts: str.isdigit takes them


def test_invalid_nir_cannot_be_tokenized():
    with pytest.raises(ids.IdentifierError):
        FPE.tokenize("295109912611199")


def test_wrong_key_mostly_fails_closed():
    # FPE is not authenticated: a wrong key yields garbage that is usually not a valid NIR.
    import random

    from protect_corpus import make_nir

    rng = random.Random(5)
    wrong = NirFpe(OTHER)
    failures = 0
    for _ in range(200):
        nir = make_nir(rng)
        try:
            assert wrong.detokenize(FPE.tokenize(nir)) != nir
        except KeyMaterialError:
            failures += 1
    assert failures > 150
