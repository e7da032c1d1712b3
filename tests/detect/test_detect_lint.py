"""A broken rule is refused at load time with its file and line; lint reports every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from rempart.detect.loader import lint_rules, load_rules
from rempart.errors import RuleError

GOOD_SAMPLES = """samples:
  - name: s
    events: [{user_name: PH1, action: auth.login, outcome: failure}]
    forbid: [PH1]
"""
HEADER = (
    "id: X-TEST-001\nversion: 1\ntitle: t\nseverity: low\ndescription: d\n"
    "technique: T1110.001\nfalse_positives: none\n"
)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("type: match\nfilter: statuss == 404\n", 9, "unknown field 'statuss'"),
        ("type: match\nfilter: status == 'x'\n", 9, "compared with a string"),
        ("type: match\nfilter: action > 3\n", 9, "needs a numeric field"),
        ("type: match\nfilter: status ~ 3\n", 9, "unexpected character"),
        ("type: match\nfilter: path matches /([/\n", 9, "regular expression"),
        ("type: event_count\nfilter: true\nwindow: 45d\nthreshold: 3\n", 10, "outside 1s..30d"),
        ("type: event_count\nfilter: true\nwindow: soon\nthreshold: 3\n", 10, "not a duration"),
        ("type: event_count\nfilter: true\nwindow: 5m\nthreshold: many\n", 11, "expected"),
        ("type: sliding\nfilter: true\n", 8, "unknown rule type 'sliding'"),
        ("type: match\nfilter: true\nwindoww: 5m\n", 10, "unknown field 'windoww'"),
        ("type: match\nfilter: true\nthreshold: 5\n", 10, "not valid for type match"),
        (
            "type: value_count\nfilter: true\nwindow: 5m\nthreshold: 3\nfield: nope\n",
            12,
            "unknown field 'nope'",
        ),
        (
            "type: value_count\nfilter: true\nwindow: 5m\nthreshold: 3\nfield: source_ip\n"
            "cleared_by: outcome == 'success' and statuss == 200\n",
            13,
            "cleared_by: unknown field 'statuss'",
        ),
        (
            "type: value_count\nfilter: true\nwindow: 5m\nthreshold: 3\nfield: source_ip\n"
            "cleared_by: 3\n",
            13,
            "cleared_by: expected str",
        ),
        ("type: risk\nthreshold: 50\nmin_signals: 0\n", 10, "min_signals: must be"),
        (
            "type: event_count\nfilter: true\nwindow: 5m\nthreshold: 3\n"
            "cleared_by: outcome == 'success'\n",
            12,
            "not valid for type event_count",
        ),
        (
            "type: baseline\nfilter: true\nquantity: novelty_share\nspan_days: 7\n",
            11,
            "needs a count quantity",
        ),
    ],
)
def test_broken_rule_is_refused_with_file_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    path = write(tmp_path, HEADER + body + GOOD_SAMPLES)
    with pytest.raises(RuleError) as err:
        load_rules([path])
    assert err.value.where == f"{path}:{line}"
    assert message in str(err.value)


def test_lint_reports_every_problem_of_every_rule_at_once(tmp_path: Path) -> None:
    first = HEADER + "type: match\nfilter: statuss == 1\nwindoww: 3\n" + GOOD_SAMPLES
    second = HEADER.replace("X-TEST-001", "X-TEST-002") + "type: nope\nfilter: true\n"
    path = write(tmp_path, first + "---\n" + second)
    _specs, problems = lint_rules([path])
    text = "\n".join(str(p) for p in problems)
    assert "unknown field 'statuss'" in text
    assert "unknown field 'windoww'" in text
    assert "unknown rule type 'nope'" in text
    assert "no samples" in text
    assert len(problems) >= 4


def test_duplicate_rule_ids_are_refused(tmp_path: Path) -> None:
    doc = HEADER + "type: match\nfilter: true\n" + GOOD_SAMPLES
    path = write(tmp_path, doc + "---\n" + doc)
    _specs, problems = lint_rules([path])
    assert any("already defined" in str(p) for p in problems)


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "id: [unclosed\n")
    _specs, problems = lint_rules([path])
    assert problems and problems[0].where is not None
    assert problems[0].where.startswith(str(path) + ":")


def test_missing_required_fields_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, "id: X-TEST-009\ntype: match\n")
    _specs, problems = lint_rules([path])
    text = "\n".join(str(p) for p in problems)
    for field in ("version", "title", "severity", "description", "technique", "filter"):
        assert f"'{field}' is missing" in text
