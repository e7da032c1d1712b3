"""Load rule packs: built-in packs by profile name, extra directories, all problems at once."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from rempart.detect.spec import RuleSpec, parse_rule_text
from rempart.errors import RuleError


def builtin_pack_dir(name: str) -> Path:
    """Directory of a shipped rule pack (``tiers-payant``)."""
    base = Path(str(resources.files("rempart.detect").joinpath("rules")))
    path = base / name
    if not path.is_dir():
        known = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise RuleError(f"no built-in rule pack {name!r}", hint=f"known: {', '.join(known)}")
    return path


def rule_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")]))
        elif p.exists():
            files.append(p)
        else:
            raise RuleError("rule file or directory not found", where=str(p))
    return files


def lint_rules(paths: Iterable[Path]) -> tuple[list[RuleSpec], list[RuleError]]:
    """Every valid spec and every problem (including duplicate ids and unknown signal ids)."""
    specs: list[RuleSpec] = []
    problems: list[RuleError] = []
    for f in rule_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(RuleError(f"cannot read rule file: {exc}", where=str(f)))
            continue
        got, errs = parse_rule_text(text, str(f))
        specs.extend(got)
        problems.extend(errs)
    seen: dict[str, RuleSpec] = {}
    for s in specs:
        if s.id in seen:
            problems.append(
                RuleError(f"rule id {s.id} already defined at {seen[s.id].where}", where=s.where)
            )
        seen[s.id] = s
    for s in specs:
        for ref in (*s.signals, *[r for smp in s.samples for r in smp.with_rules]):
            if ref not in seen:
                problems.append(
                    RuleError(f"rule {s.id}: refers to unknown rule {ref}", where=s.where)
                )
    return specs, problems


def load_rules(paths: Iterable[Path], *, disabled: Iterable[str] = ()) -> list[RuleSpec]:
    """Load rules, refusing the whole set on the first problem (fail closed)."""
    specs, problems = lint_rules(paths)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first.message += f" (+{len(problems) - 1} more problems: run 'rempart rules lint')"
        raise first
    off = set(disabled)
    return [s for s in specs if s.id not in off]


def load_pack(
    profile: str = "tiers-payant", extra: Iterable[Path] = (), disabled: Iterable[str] = ()
) -> list[RuleSpec]:
    """The profile's built-in pack plus extra rule directories."""
    return load_rules([builtin_pack_dir(profile), *extra], disabled=disabled)
