"""Building rulesets from inline YAML in tests."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

from strata.engine import CompiledRuleset
from strata.rulefiles.loader import compile_rule_file, load_schema, parse_rule_file
from tests.conftest import RULES_DIR

SCHEMA = load_schema(RULES_DIR / "profile.yaml")
AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def ruleset(text: str, dependencies: dict[str, CompiledRuleset[Any]] | None = None) -> CompiledRuleset[Any]:
    return compile_rule_file(parse_rule_file(textwrap.dedent(text), "inline.yaml"), SCHEMA, dependencies)
