"""Every default rule file's own test cases, one pytest case each (the growthbook habit)."""

from __future__ import annotations

from typing import Any

import pytest

from strata.rulefiles.casetests import run_case
from strata.rulefiles.loader import RuleSet, load_paths
from tests.conftest import RULES_DIR

RULESET, NAMES = load_paths([RULES_DIR])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        params = [(name, case) for name in NAMES for case in RULESET.compiled[name].spec.tests]
        metafunc.parametrize("name,case", params, ids=[f"{n}: {c.name}" for n, c in params])


def test_case(name: str, case: Any) -> None:
    result = run_case(RULESET.compiled[name], case)
    assert result.passed, result.describe()


def test_every_default_rule_file_carries_tests() -> None:
    loaded: RuleSet = RULESET
    assert len(NAMES) >= 1
    for name in NAMES:
        assert loaded.compiled[name].spec.tests, f"{name} has no tests"
