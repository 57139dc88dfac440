"""ProfileSchema.parse: its walk over a valid profile's own fields agrees with the careful walk.

``parse`` first walks only the fields a profile sends (``_parse_valid``), and walks every
field of the schema (``_parse_checked``) only when that fails, to report each problem.
Over profiles with valid, wrong, null, missing and unknown fields, both must agree: the
same typed values (in the same order), or the same problems. (The time zone is checked
after either walk, the same way: these profiles name only known zones.)
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.engine.schema import ProfileSchema
from strata.errors import ProfileError
from strata.rulefiles.loader import load_schema
from tests.conftest import RULES_DIR

SCHEMA = load_schema(RULES_DIR / "profile.yaml")
SCALARS: dict[str, list[Any]] = {
    "string": ["", "Europe/Berlin", "u-1"],
    "integer": [0, 3, -2, 2.0],
    "number": [0, 1.5, -40.25],
    "boolean": [True, False],
    "datetime": ["2026-03-10T12:00:00Z", "2026-03-10"],
    "date": ["2026-03-10", "2026-03-10T23:00:00+02:00"],
}
WRONG: list[Any] = [None, "x", 7, True, 2.5, "soon", [], {}]


def _value(schema: ProfileSchema, name: str) -> st.SearchStrategy[Any]:
    """Values of the field's type (some of them invalid, as a caller may send) or of another."""
    field_type = schema.fields[name].type
    scalar = st.sampled_from(["UTC", "Europe/Berlin"] if name == "timezone" else SCALARS[field_type.scalar])
    typed: st.SearchStrategy[Any] = scalar
    if field_type.container == "list":
        typed = st.lists(scalar, max_size=3)
    elif field_type.container == "map":
        typed = st.dictionaries(st.sampled_from(["a", "b"]), scalar, max_size=2)
    wrong = [value for value in WRONG if name != "timezone" or not isinstance(value, str)]
    return st.one_of(typed, typed, typed, typed, typed, typed, st.sampled_from(wrong))


@st.composite
def raw_profiles(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(SCHEMA.fields)), unique=True, max_size=12))
    raw = {name: draw(_value(SCHEMA, name)) for name in names}
    if draw(st.integers(0, 9)):  # most name their user, a required field
        raw["user_id"] = "u-1"
    if draw(st.integers(0, 9)) == 0:
        raw["colour"] = "red"
    return raw


@settings(max_examples=300, deadline=None)
@given(raw_profiles())
def test_parse_agrees_with_the_careful_walk(raw: dict[str, Any]) -> None:
    profile, problems = SCHEMA._parse_checked(raw)
    try:
        parsed = SCHEMA.parse(raw)
    except ProfileError as exc:
        assert list(exc.problems) == problems
    else:
        assert not problems
        assert list(parsed.items()) == list(profile.items())
