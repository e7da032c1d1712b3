"""Synthetic NIRs are valid: shape, key, Corsica and overseas; checked against python-stdnum."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from stdnum.fr import nir as stdnum_nir

from rempart.sim.nir import is_valid_nir, make_nir, nir_key, random_nir, random_nir_body
from rempart.sim.population import Population


@given(st.integers(min_value=0, max_value=2**32))
def test_every_generated_nir_is_valid_and_agrees_with_stdnum(seed: int) -> None:
    nir = random_nir(random.Random(seed))
    assert len(nir) == 15
    assert is_valid_nir(nir)
    assert stdnum_nir.is_valid(nir)


@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(["2A", "2B"]))
def test_corsican_nir_key_uses_19_and_18(seed: int, dept: str) -> None:
    body = random_nir_body(random.Random(seed), department=dept)
    assert body[5:7] == dept
    digits = body[:5] + ("19" if dept == "2A" else "18") + body[7:]
    assert nir_key(body) == 97 - int(digits) % 97
    assert stdnum_nir.is_valid(make_nir(body))


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=96))
def test_when_key_is_altered_then_nir_is_invalid(seed: int, delta: int) -> None:
    nir = random_nir(random.Random(seed))
    wrong = (int(nir[13:]) + delta) % 100
    assert not is_valid_nir(nir[:13] + f"{wrong:02d}")


@given(st.text(max_size=20))
def test_arbitrary_text_is_valid_only_if_stdnum_agrees(text: str) -> None:
    if is_valid_nir(text):
        assert stdnum_nir.is_valid(text)


def test_population_nirs_are_valid_unique_and_include_corsica_overseas_and_abroad() -> None:
    pop = Population(seed=5, size=20_000)
    nirs = [pop.nir(i) for i in range(len(pop))]
    assert len(set(nirs)) == len(nirs)
    assert all(is_valid_nir(n) for n in nirs)
    depts = [n[5:7] for n in nirs]
    assert "2A" in depts and "2B" in depts
    assert any(n[5:8] in ("971", "972", "973", "974", "976") for n in nirs)
    assert "99" in depts
