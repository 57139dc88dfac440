"""The one error table: every error class has a row, and the envelope is the same everywhere."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import orjson
import pytest

import strata
from strata.errors import ALL_ERRORS, InvalidArgument, NotFound, Problem, ProfileError, StrataError
from strata.transport.convert import message_to_json
from strata.transport.errors import (
    ERROR_TABLE,
    as_strata_error,
    code_for_grpc,
    envelope,
    envelope_bytes,
    error_message,
    status_of,
    summary,
)


def _all_subclasses(cls: type[StrataError]) -> set[type[StrataError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


@pytest.mark.parametrize("error_class", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_has_a_row(error_class: type[StrataError]) -> None:
    assert error_class.code in ERROR_TABLE, f"add {error_class.code!r} to strata.transport.errors.ERROR_TABLE"


def test_error_classes_defined_outside_errors_py_have_rows_too() -> None:
    """Other packages (the store, the registry) define their own StrataErrors."""
    for module in pkgutil.walk_packages(strata.__path__, "strata."):
        skip = ("strata.api", "strata.__main__", "strata.store.migrations")  # generated, or run on import
        if not module.name.startswith(skip):
            importlib.import_module(module.name)
    missing = {
        cls.__qualname__: cls.code for cls in _all_subclasses(StrataError) if cls.code not in ERROR_TABLE
    }
    assert not missing


def test_statuses_are_consistent() -> None:
    for code, status in ERROR_TABLE.items():
        assert 400 <= status.http < 600, code
        assert status.grpc not in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN), code
    assert ERROR_TABLE["not_found"].http == 404
    assert ERROR_TABLE["invalid_argument"].grpc == grpc.StatusCode.INVALID_ARGUMENT
    assert ERROR_TABLE["deadline_exceeded"].grpc == grpc.StatusCode.DEADLINE_EXCEEDED


def test_runtime_statuses_map_back_to_codes() -> None:
    assert code_for_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED) == "resource_exhausted"
    assert code_for_grpc(grpc.StatusCode.DEADLINE_EXCEEDED) == "deadline_exceeded"
    assert code_for_grpc(grpc.StatusCode.INTERNAL) in ("evaluation_failed", "internal")
    assert code_for_grpc(grpc.StatusCode.DATA_LOSS) == "internal"


def test_subclasses_inherit_their_parents_status() -> None:
    assert status_of(ProfileError("bad")) == ERROR_TABLE["invalid_argument"]


def test_envelope_names_every_problem_and_the_first_in_the_message() -> None:
    error = ProfileError(
        "invalid profile",
        [
            Problem("expected an integer, got str", field="profile.points"),
            Problem("unknown", field="profile.x"),
        ],
    )
    assert envelope(error) == {
        "code": "invalid_argument",
        "message": "invalid profile: profile.points: expected an integer, got str (and 1 more)",
        "errors": [
            {"message": "expected an integer, got str", "field": "profile.points"},
            {"message": "unknown", "field": "profile.x"},
        ],
    }
    assert orjson.loads(envelope_bytes(error)) == envelope(error)
    assert message_to_json(error_message(error)) == envelope(error)


def test_envelope_keeps_file_line_and_rule() -> None:
    error = InvalidArgument(
        "bad rule file", [Problem("no", file="r.yaml", line=3, rule="x", field="stages.0")]
    )
    assert envelope(error)["errors"] == [
        {"message": "no", "file": "r.yaml", "line": 3, "rule": "x", "field": "stages.0"}
    ]


def test_summary_without_problems_is_the_message() -> None:
    assert summary(NotFound("no ruleset named 'x'")) == "no ruleset named 'x'"


def test_unexpected_exceptions_are_hidden_behind_internal() -> None:
    error = as_strata_error(KeyError("secret detail"))
    assert error.code == "internal"
    assert "secret" not in envelope(error)["message"]
    known = NotFound("x")
    assert as_strata_error(known) is known
