"""Bad rule files get one clear error naming file, line, rule and field; nothing partial loads."""

from __future__ import annotations

import textwrap

import pytest

from strata.errors import Problem, RuleFileError
from strata.rulefiles.loader import compile_all, parse_rule_file
from tests.unit.helpers import SCHEMA, ruleset

GOOD = """\
name: lifecycle.test
kind: lifecycle
description: test
stages:
  - id: active
    when: active_today
    reason: active today
default: {stage: idle, reason: nothing else}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(RuleFileError) as caught:
        ruleset(text)
    assert caught.value.problems, "an error must list its problems"
    return list(caught.value.problems)


def test_malformed_yaml_names_the_line() -> None:
    (problem,) = problems_of(GOOD.replace("  - id: active", "  - id: [active"))
    assert problem.file == "inline.yaml"
    assert problem.line == 6
    assert "malformed YAML" in problem.message


def test_unknown_kind_is_refused_at_its_line() -> None:
    (problem,) = problems_of(GOOD.replace("kind: lifecycle", "kind: lifecyle"))
    assert problem.line == 2 and problem.field == "kind"
    assert "unknown kind 'lifecyle'" in problem.message


def test_unknown_key_is_refused_with_rule_and_line() -> None:
    (problem,) = problems_of(GOOD.replace("    reason: active today", "    reason: active today\n    wen: x"))
    assert problem.message == "unknown key"
    assert (problem.line, problem.rule, problem.field) == (8, "active", "stages.0.wen")


def test_duplicate_rule_ids_are_refused() -> None:
    text = GOOD.replace("default:", "  - id: active\n    when: not active_today\n    reason: again\ndefault:")
    (problem,) = problems_of(text)
    assert "duplicate rule id 'active'" in problem.message


def test_duplicate_yaml_keys_are_refused_not_silently_overwritten() -> None:
    (problem,) = problems_of(
        GOOD.replace("    when: active_today", "    when: active_today\n    when: false")
    )
    assert problem.line == 7 and "duplicate key 'when'" in problem.message


def test_expression_that_does_not_parse() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: active_today and"))
    assert (problem.line, problem.rule, problem.field) == (6, "active", "stages.0.when")
    assert "syntax error" in problem.message


def test_unknown_fact_suggests_the_right_name() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: activ_today"))
    assert problem.rule == "active" and "unknown fact 'activ_today'" in problem.message
    assert "active_today" in problem.message


def test_type_error_is_caught_at_load() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: posts_30d + 'x' > 1"))
    assert problem.rule == "active" and problem.line == 6


def test_condition_must_be_boolean() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: posts_30d + 1"))
    assert "must be BOOLEAN" in problem.message


def test_nullable_fact_must_be_discharged() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: days_since_last_order > 3"))
    assert "nullable" in problem.message or "null" in problem.message


def test_regex_that_does_not_compile() -> None:
    (problem,) = problems_of(GOOD.replace("when: active_today", "when: user_id =~ '(unclosed'"))
    assert problem.rule == "active" and "regex" in problem.message


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD.replace("when: active_today", "when: nope_one") + textwrap.dedent("""\
        tags: []
    """)
    problems = problems_of(text)
    assert {p.message for p in problems} >= {"unknown key"}
    text = GOOD.replace("default:", "  - id: two\n    when: nope_two\n    reason: r\ndefault:").replace(
        "when: active_today", "when: nope_one"
    )
    assert [p.rule for p in problems_of(text)] == ["active", "two"]


def test_one_bad_file_loads_nothing() -> None:
    good = parse_rule_file(GOOD, "good.yaml")
    bad = parse_rule_file(
        GOOD.replace("lifecycle.test", "lifecycle.bad").replace("active_today", "nope"), "bad.yaml"
    )
    with pytest.raises(RuleFileError) as caught:
        compile_all([good, bad], SCHEMA)
    assert [p.file for p in caught.value.problems] == ["bad.yaml"]


def test_intervention_naming_a_missing_ruleset_is_refused() -> None:
    text = """\
        name: intervention.test
        kind: intervention
        description: t
        uses: {lifecycle: lifecycle.nowhere}
        actions:
          - {id: a, when: 'true', channel: push, template: t, priority: 1, reason: r}
        """
    (problem,) = problems_of(textwrap.dedent(text))
    assert problem.field == "uses.lifecycle" and problem.line == 4
