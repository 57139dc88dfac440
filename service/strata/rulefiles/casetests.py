"""Running the ``tests:`` cases a rule file carries.

A case names the decision fields it expects; only those are compared, and
inside them only the keys given (``actions: [{id: recall}]``), so a case about
which actions are chosen does not break when a reason is reworded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strata.engine import CompiledRuleset
from strata.engine.decision import plain
from strata.engine.spec import TestCase
from strata.errors import StrataError


@dataclass(frozen=True)
class CaseResult:
    ruleset: str
    case: str
    passed: bool
    mismatches: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (expected, actual)
    error: str | None = None

    def describe(self) -> str:
        if self.passed:
            return f"PASS {self.ruleset}: {self.case}"
        lines = [f"FAIL {self.ruleset}: {self.case}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for name, (expected, actual) in self.mismatches.items():
            lines.append(f"  {name}: expected {expected!r}, got {actual!r}")
        return "\n".join(lines)


def matches(expected: Any, actual: Any) -> bool:
    """Subset match: a mapping names only the keys it cares about, at any depth;
    a list must have the same length with each item matching."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def run_case(ruleset: CompiledRuleset[Any], case: TestCase) -> CaseResult:
    try:
        decision = ruleset.evaluate(case.profile, case.as_of, case.event).to_dict()
    except StrataError as exc:
        return CaseResult(ruleset.name, case.name, False, error=str(exc))
    mismatches = {}
    for name, expected in plain(case.expect).items():
        actual = decision.get(name, "<no such field>")
        if not matches(expected, actual):
            mismatches[name] = (expected, actual)
    return CaseResult(ruleset.name, case.name, not mismatches, mismatches)


def run_cases(ruleset: CompiledRuleset[Any]) -> list[CaseResult]:
    return [run_case(ruleset, case) for case in ruleset.spec.tests]
