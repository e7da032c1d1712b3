"""Two comparisons of one field compile to a single read of the field: same truth as the
comparisons compiled one by one, including on a missing value. Filters compiled as the
engine's native ``Pred`` objects have the truth of a plain reading of the filter's tree."""

from __future__ import annotations

import operator
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.expr import (
    BoolOp,
    Const,
    Node,
    Not,
    _compile_test,
    compile_node,
    compile_pred,
    parse,
    resolve_field,
)
from rempart.detect.loader import load_pack
from rempart.events import Event

OPS = ["<", "<=", ">", ">="]


def _one_by_one(node: BoolOp):  # type: ignore[no-untyped-def]
    tests = [_compile_test(t) for t in node.items]  # type: ignore[arg-type]
    join = all if node.op == "and" else any
    return lambda e: join(t(e) for t in tests)


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _truth(node: Node, e: Event) -> bool:
    """The filter's meaning read off its tree, test by test (the oracle: no tables, no ranges,
    no closures): a comparison or text test on a missing value is false."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Not):
        return not _truth(node.inner, e)
    if isinstance(node, BoolOp):
        parts = [_truth(n, e) for n in node.items]
        return all(parts) if node.op == "and" else any(parts)
    resolved = resolve_field(node.field)
    assert resolved is not None
    x: Any = resolved[1](e)
    v: Any = node.value
    op = node.op
    if op == "exists":
        return bool(x) if resolved[2] is tuple else x is not None
    if op in ("==", "!="):
        return (x == v) is (op == "==")
    if op in ("in", "notin"):
        return (x in v) is (op == "in")
    if x is None:
        return False
    if op in _ORDER:
        return bool(_ORDER[op](x, v))
    if op == "startswith":
        return bool(x.startswith(v))
    if op == "endswith":
        return bool(x.endswith(v))
    if op == "contains":
        return v in x
    assert op == "matches" and isinstance(v, re.Pattern)
    return v.search(x) is not None


@given(
    st.floats(min_value=0, max_value=4e9),
    st.sampled_from(OPS),
    st.integers(0, 23),
    st.sampled_from(OPS),
    st.integers(0, 23),
    st.sampled_from(["and", "or"]),
)
def test_when_hour_range_compiled_then_same_truth_as_each_comparison(
    ts: float, op1: str, v1: int, op2: str, v2: int, join: str
) -> None:
    node = parse(f"hour {op1} {v1} {join} hour {op2} {v2}")
    assert isinstance(node, BoolOp)
    ev = Event(ts=ts, source_ip="10.0.0.1", action="beneficiary.read", outcome="success")
    assert compile_node(node)(ev) == _one_by_one(node)(ev)


@given(st.integers(0, 600), st.sampled_from(["and", "or"]))
def test_when_range_on_a_number_then_it_matches_the_two_comparisons(size: int, join: str) -> None:
    node = parse(f"bytes >= 400 {join} bytes < 500")
    assert isinstance(node, BoolOp)
    ev = Event(ts=0.0, source_ip="10.0.0.1", action="a", outcome="success", bytes=size)
    assert compile_node(node)(ev) == _one_by_one(node)(ev)


def test_when_night_hours_then_or_range_is_true_only_at_night() -> None:
    pred = compile_node(parse("hour >= 22 or hour < 6"))
    # 2024-01-15 in Paris (UTC+1): 23:30 local is 22:30 UTC, 12:00 local is 11:00 UTC.
    night = Event(ts=1705357800.0, source_ip="1.1.1.1", action="a", outcome="success")
    noon = Event(ts=1705316400.0, source_ip="1.1.1.1", action="a", outcome="success")
    assert pred(night) is True
    assert pred(noon) is False


# The engine's dispatch calls filters as native ``Pred`` objects (``compile_pred``, whose
# ``test`` is also ``compile_node``): the truth of the filter read off its tree, on every
# filter, joined or negated.
_FILTERS = [
    *sorted({spec.filter for spec in load_pack("tiers-payant") if spec.filter}),
    '(hour >= 22 or hour < 6) and account_kind not in ["hopital"]',
    "not (weekday >= 5) or status == 404",
    'hour >= 8 and hour < 18 and not (action == "auth.login" or bytes > 1000)',
    'account_kind == "pharmacie" or (hour < 7 and weekday == 6) or user_name exists',
    "true",
    "false and status == 200",
    'user_name startswith "PH" and not (user_name endswith "1")',
    'user_agent contains "Mozilla" or path matches /droits$/',
    "categories exists and status != 200",
    'outcome not in ["failure"] and bytes <= 100 or bytes > 4000',
]


@pytest.mark.parametrize("text", _FILTERS)
@given(
    st.floats(min_value=0, max_value=4e9),
    st.sampled_from(["beneficiary.read", "auth.login", "claim.create"]),
    st.sampled_from(["success", "failure"]),
    st.sampled_from([None, "hopital", "pharmacie", "medecin"]),
    st.sampled_from([None, "PH0001", "PH0002", "MG0001"]),
    st.sampled_from([200, 404]),
    st.integers(0, 5000),
    st.sampled_from([None, "Mozilla/5.0", "curl/8.5"]),
    st.sampled_from(["/api/v1/beneficiaires/{id}/droits", "/app/"]),
    st.sampled_from([(), ("identity", "coverage")]),
)
def test_when_filter_compiled_as_pred_then_same_truth_as_its_tree(
    text: str,
    ts: float,
    action: str,
    outcome: str,
    kind: str | None,
    user: str | None,
    status: int,
    size: int,
    agent: str | None,
    path: str,
    categories: tuple[str, ...],
) -> None:
    node = parse(text)
    ev = Event(
        ts=ts,
        source_ip="10.0.0.1",
        action=action,
        outcome=outcome,
        user_name=user,
        account_kind=kind,
        status=status,
        bytes=size,
        user_agent=agent,
        path=path,
        categories=categories,
    )
    assert compile_pred(node).test(ev) is _truth(node, ev)
    assert compile_node(node)(ev) is _truth(node, ev)
