"""The filter language: parses, type-checks, evaluates like Python would, and never evals."""

from __future__ import annotations

import contextlib
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.expr import (
    ByActionOutcome,
    ExprError,
    compile_filter,
    compile_node,
    local_hour,
    local_weekday,
    parse,
)
from rempart.events import Event


def ev(**kw: object) -> Event:
    base: dict[str, object] = {
        "ts": 1706774400.0,
        "source_ip": "203.0.113.7",
        "action": "beneficiary.read",
        "outcome": "success",
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ('action == "beneficiary.read"', ev(), True),
        ('event.action == "auth.login"', ev(), False),
        ("status >= 400 and status < 500", ev(status=404), True),
        ("status >= 400 and status < 500", ev(status=200), False),
        ('not outcome == "failure"', ev(), True),
        ('user_name in ["PH1", "PH2"]', ev(user_name="PH2"), True),
        ('user_name not in ["PH1", "PH2"]', ev(user_name="PH2"), False),
        ("user_name exists", ev(), False),
        ('user_agent startswith "python"', ev(user_agent="python-requests/2"), True),
        ("user_agent matches /headless/i", ev(user_agent="HeadlessChrome"), True),
        ('categories contains "nir"', ev(categories=("nir",)), True),
        ('source.ip == "203.0.113.7" or false', ev(), True),
        ('ip24 == "203.0.113"', ev(), True),
        ("user_name == null", ev(), True),
        ('(action == "a" or action == "b") and status == 0', ev(action="b"), True),
    ],
)
def test_filter_evaluates_as_written(text: str, event: Event, expected: bool) -> None:
    assert compile_node(parse(text))(event) is expected


def test_action_tests_implied_by_the_engine_index_are_compiled_away() -> None:
    pred, actions = compile_filter('action == "auth.login" and status == 401')
    assert actions == {"auth.login"}
    assert pred(ev(action="auth.login", status=401)) is True
    assert pred(ev(action="auth.login", status=200)) is False


def test_required_actions_let_the_engine_skip_unrelated_rules() -> None:
    assert compile_filter('action == "auth.login" and status == 401')[1] == {"auth.login"}
    assert compile_filter('action in ["a", "b"] or action == "c"')[1] == {"a", "b", "c"}
    assert compile_filter('action == "a" or status == 1')[1] is None
    assert compile_filter("status == 1")[1] is None


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("status == ", 11),
        ("bogus == 1", 1),
        ("status === 1", 10),
        ('__import__("os")', 1),
        ("(status == 1", 13),
        ("action < 3", 8),
    ],
)
def test_bad_expression_names_its_column(text: str, column: int) -> None:
    with pytest.raises(ExprError) as err:
        parse(text)
    assert err.value.column == column


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_expr_error(text: str) -> None:
    with contextlib.suppress(ExprError):
        parse(text)


@given(st.integers(min_value=0, max_value=599), st.integers(min_value=0, max_value=599))
def test_numeric_comparison_agrees_with_python(a: int, b: int) -> None:
    for op in ("==", "!=", "<", "<=", ">", ">="):
        pred = compile_node(parse(f"status {op} {b}"))
        assert pred(ev(status=a)) is eval(f"{a} {op} {b}")


def test_local_hour_follows_paris_time_across_daylight_saving() -> None:
    assert local_hour(1706774400.0) == 9  # 2024-02-01 08:00Z = 09:00 CET
    assert local_hour(1719820800.0) == 10  # 2024-07-01 08:00Z = 10:00 CEST


_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_HOUR_OPS = tuple(_OPS)


@given(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.sampled_from(_HOUR_OPS),
    st.integers(min_value=-1, max_value=24),
    st.sampled_from(_HOUR_OPS),
    st.integers(min_value=-1, max_value=24),
    st.sampled_from(["and", "or"]),
    st.booleans(),
)
def test_hour_and_weekday_filters_read_a_table_that_agrees_with_the_tests(
    ts: float, op1: str, v1: int, op2: str, v2: int, joiner: str, negate: bool
) -> None:
    """A filter on ``hour`` (or ``weekday``) alone is compiled to a table of its value per hour:
    the same answer as the comparisons, at any time, across daylight saving changes."""
    for field, value in (("hour", local_hour(ts)), ("weekday", local_weekday(ts))):
        text = f"{field} {op1} {v1} {joiner} {field} {op2} {v2}"
        if negate:
            text = f"not ({text})"
        node = parse(text)
        table = compile_node(node)
        a, b = _OPS[op1](value, v1), _OPS[op2](value, v2)
        expected = (a and b) if joiner == "and" else (a or b)
        assert table(ev(ts=ts)) is (expected != negate), text
        # ... and with another field beside it, the hour part still reads the table.
        mixed = compile_node(parse(f"({text}) and status == 200"))
        assert mixed(ev(ts=ts, status=200)) is (expected != negate)
        assert mixed(ev(ts=ts, status=404)) is False


_PAIR_PARTS = st.sampled_from(["", "x", "auth.login", "beneficiary.read", "success"])


@given(st.lists(st.tuples(_PAIR_PARTS, _PAIR_PARTS), max_size=30))
def test_by_action_outcome_gives_what_build_gives_and_builds_each_pair_once(
    pairs: list[tuple[str, str]],
) -> None:
    calls: list[tuple[str, str]] = []

    def build(action: str, outcome: str) -> tuple[str, str]:
        calls.append((action, outcome))
        return (action, outcome)

    memo = ByActionOutcome(build)
    for action, outcome in pairs:
        assert memo.get(action, outcome) == (action, outcome)
    # ("", "") is built at once: the memo is right for an event with neither field set.
    assert calls[0] == ("", "")
    assert sorted(calls) == sorted({("", ""), *pairs})
