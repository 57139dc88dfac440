"""The preview's pure parts: what compiles to SQL and what falls back (and why), the matrix, the settings."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from strata.config import Settings
from strata.engine import CompiledRuleset
from strata.preview.classify import RulesetNotCompilable, SqlScope, ruleset_case
from strata.preview.dialects import dialect_for
from strata.preview.result import Tally, tabulate
from strata.rulefiles.loader import compile_rule_file, load_schema, parse_rule_file
from tests.conftest import RULES_DIR

AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
SCHEMA = load_schema(RULES_DIR / "profile.yaml")


def lifecycle(*whens: str) -> CompiledRuleset[Any]:
    stages = [{"id": f"s{index}", "when": when, "reason": "r"} for index, when in enumerate(whens)]
    document = {
        "name": "lifecycle.unit",
        "kind": "lifecycle",
        "description": "d",
        "stages": stages,
        "default": {"stage": "other", "reason": "r"},
    }
    return compile_rule_file(parse_rule_file(json.dumps(document)), SCHEMA)


def compile_on(database: str, ruleset: CompiledRuleset[Any]) -> None:
    ruleset_case(ruleset, SqlScope(dialect_for(database, AS_OF), SCHEMA), "t")


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
@pytest.mark.parametrize(
    "when",
    [
        "days_since_last_active == null or (days_since_last_active ?? 0) > 30",
        "is_signed_kol and followers_count >= 100000 and not active_today",
        "orders_365d * 2 - posts_30d >= 3 and 'food' in tags",
        "(membership ?? 'none') in ['black_card', 'vip'] and timezone.starts_with('Asia/')",
        "(registered_at ?? $now) < $now - t'P30D' and (first_active_date ?? $today) <= $today",
        "(recent_gap_days ?? 0) > 30 ? active_days_7d >= 4 : local_hour < 12",
        "spend_365d >= 99.5 and badges.length > 1 and 'York' in timezone",
    ],
)
def test_the_subset_compiles_on_both_databases(database: str, when: str) -> None:
    compile_on(database, lifecycle(when))


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("orders_365d / 2 > 3", "division (/) is not translated"),
        ("orders_365d % 2 == 1", "modulo (%) is not translated"),
        ("timezone =~ 'Asia/.*'", "regular expressions"),
        ("(membership ?? '').as_lower == 'vip'", "the attribute .as_lower is not translated"),
        ("$abs(points - 100) < 5", "calling $abs is not translated"),
        ("$today + t'P1D' > $now", "wall-clock arithmetic"),
        ("(daily_points['note_published'] ?? 0) > 10", "item lookups (x[...]) are not translated"),
        ("daily_points.length > 0", "the map field 'daily_points' is not translated"),
        (
            "[tag for tag in tags if tag == 'food'].length > 0",
            "comprehensions ([... for ... in ...]) are not",
        ),
        ("(registered_at ?? $now).year == 2025", "the attribute .year is not translated"),
    ],
)
def test_what_falls_back_says_why(when: str, reason: str) -> None:
    with pytest.raises(RulesetNotCompilable) as caught:
        compile_on("postgresql", lifecycle(when))
    assert reason in caught.value.fallbacks[0].reason


def test_every_rule_that_falls_back_is_listed_not_only_the_first() -> None:
    ruleset = lifecycle("points / 2 > 1", "active_today", "timezone =~ 'x'")
    with pytest.raises(RulesetNotCompilable) as caught:
        compile_on("postgresql", ruleset)
    assert [(f.rule, f.field) for f in caught.value.fallbacks] == [
        ("s0", "stages.0.when"),
        ("s2", "stages.2.when"),
    ]


def test_sqlite_refuses_only_what_needs_exact_decimals() -> None:
    ruleset = lifecycle("spend_365d * 2 > 300", "orders_365d * 2 > 3", "spend_365d > 0.1")
    compile_on("postgresql", ruleset)
    with pytest.raises(RulesetNotCompilable) as caught:
        compile_on("sqlite", ruleset)
    assert [f.rule for f in caught.value.fallbacks] == ["s0"]
    assert "SQLite has no exact decimal" in caught.value.fallbacks[0].reason


def test_the_matrix_lists_cells_in_class_order_with_shares_and_samples_for_moves() -> None:
    tallies = [
        Tally("b", "a", 1, "u9", "u9"),
        Tally("a", "a", 3, "u1", "u5"),
        Tally("a", "new", 4, "u2", "u8"),
    ]
    counts = tabulate(tallies, ["a", "b"], ["a", "b", "new"])
    assert counts["classes"] == ("a", "b", "new")
    assert [(c.before, c.after, c.count, c.share, c.samples) for c in counts["cells"]] == [
        ("a", "a", 3, 0.375, ()),
        ("a", "new", 4, 0.5, ("u2", "u8")),
        ("b", "a", 1, 0.125, ("u9",)),
    ]
    assert counts["before"] == {"a": 7, "b": 1}
    assert counts["after"] == {"a": 4, "b": 0, "new": 4}


def test_previews_read_from_the_read_url_which_defaults_to_the_database_url() -> None:
    assert Settings.from_env({"STRATA_DATABASE_URL": "sqlite:///a.db"}).read_database_url == "sqlite:///a.db"
    replica = {
        "STRATA_DATABASE_URL": "postgresql://primary/s",
        "STRATA_READ_DATABASE_URL": "postgresql://replica/s",
    }
    assert Settings.from_env(replica).read_database_url == "postgresql://replica/s"
    assert Settings(database_url="sqlite:///b.db").read_database_url == "sqlite:///b.db"
