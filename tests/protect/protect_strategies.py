"""Hypothesis strategies for French identifiers (valid by construction)."""

from __future__ import annotations

from hypothesis import strategies as st
from stdnum import luhn

from rempart.protect.identifiers import nir_key

digits = st.text("0123456789", min_size=1, max_size=1)


@st.composite
def nirs(draw: st.DrawFn, *, corsica: bool | None = None) -> str:
    sex = draw(st.sampled_from("1278"))
    year = f"{draw(st.integers(0, 99)):02d}"
    month = draw(st.one_of(st.integers(1, 12), st.integers(20, 42), st.integers(50, 99)))
    kind = (
        draw(st.sampled_from(["metro", "corse", "dom", "abroad"]))
        if corsica is None
        else ("corse" if corsica else "metro")
    )
    if kind == "corse":
        place = draw(st.sampled_from(["2A", "2B"])) + f"{draw(st.integers(1, 999)):03d}"
    elif kind == "dom":
        place = (
            draw(st.sampled_from(["971", "972", "973", "974", "976", "987"]))
            + f"{draw(st.integers(1, 99)):02d}"
        )
    elif kind == "abroad":
        place = "99" + f"{draw(st.integers(100, 999)):03d}"
    else:
        place = f"{draw(st.integers(1, 95)):02d}" + f"{draw(st.integers(1, 999)):03d}"
    body = sex + year + f"{month:02d}" + place + f"{draw(st.integers(1, 999)):03d}"
    return body + nir_key(body)


@st.composite
def luhn_numbers(draw: st.DrawFn, length: int, prefix: str = "") -> str:
    rest = draw(
        st.text("0123456789", min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    base = prefix + rest
    return base + luhn.calc_check_digit(base)
