"""Schemathesis against the running REST server, driven by the served /openapi.json.

Every documented operation gets requests generated from its schema. The
checks fail on any 5xx, an undocumented status or content type, or a body
that does not match the documented response (decision or error envelope).

Two deliberate exclusions: the ``Grpc-Timeout`` header is dropped (a
generated "5u" deadline makes an honest 504; deadlines are tested in
test_parity), and "schema-valid requests must be accepted" is off, because
the document describes the wire shapes, not the profile schema or which
users and rulesets exist: a well-formed request for an unknown user is
rightly a 404, one with a mistyped profile field a 400.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Servers
from tests.openapi_check import DOCUMENT

schemathesis = pytest.importorskip("schemathesis")
checks = pytest.importorskip("schemathesis.specs.openapi.checks")

OPERATIONS = [(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item]


@pytest.fixture(scope="module")
def served_schema(servers: Servers) -> Any:
    return schemathesis.openapi.from_url(servers.clients.base_url + "/openapi.json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_server_honours_its_openapi_document(
    servers: Servers, served_schema: Any, method: str, path: str
) -> None:
    """With a publisher token, so that the registry's changes get past authentication."""
    operation = served_schema[path][method]

    @given(operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exercise(case: Any) -> None:
        (case.headers or {}).pop("Grpc-Timeout", None)
        case.call_and_validate(
            headers={"Authorization": f"Bearer {servers.publisher_token}"},
            excluded_checks=[checks.positive_data_acceptance],
        )

    exercise()
