"""Expressions are data, not code: nothing in a rule file reaches Python internals."""

from __future__ import annotations

import datetime as dt

import pytest

from strata.errors import ProfileError, RuleFileError
from tests.unit.helpers import AS_OF, ruleset

TEMPLATE = """\
name: lifecycle.probe
kind: lifecycle
description: probe
stages:
  - id: probe
    when: {expr}
    reason: probe
default: {{stage: other, reason: other}}
"""


@pytest.mark.parametrize(
    "expr",
    [
        "user_id.__class__ == null",
        "user_id.__globals__ == null",
        "_secret == 1",
        "$random() > 0.5",
        "user_id.format == null",
        "$re_groups == null",
    ],
)
def test_internals_are_unreachable(expr: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        ruleset(TEMPLATE.format(expr=repr(expr)))
    assert caught.value.problems[0].rule == "probe"


def test_a_function_placed_in_the_data_is_refused_as_a_wrong_type() -> None:
    compiled = ruleset(TEMPLATE.format(expr=repr("'x' in tags")))
    with pytest.raises(ProfileError) as caught:
        compiled.evaluate({"user_id": "u", "tags": [print]}, AS_OF)
    assert caught.value.problems[0].field == "tags"


def test_now_and_today_are_the_request_clock() -> None:
    compiled = ruleset(TEMPLATE.format(expr="\"$now == d'2026-03-10T12:00:00Z' and $today.day == 10\""))
    assert compiled.evaluate({"user_id": "u"}, AS_OF).to_dict()["stage"] == "probe"
    later = AS_OF + dt.timedelta(days=1)
    assert compiled.evaluate({"user_id": "u"}, later).to_dict()["stage"] == "other"


def test_today_is_the_profiles_local_day() -> None:
    compiled = ruleset(TEMPLATE.format(expr='"$today.day == 11"'))
    late_utc = dt.datetime(2026, 3, 10, 20, 0, tzinfo=dt.UTC)
    assert (
        compiled.evaluate({"user_id": "u", "timezone": "Asia/Tokyo"}, late_utc).to_dict()["stage"] == "probe"
    )
    assert compiled.evaluate({"user_id": "u"}, late_utc).to_dict()["stage"] == "other"
