"""The Preview RPC through a real REST and a real gRPC server, on SQLite and Postgres, with a reader token.

Each answer is checked against the OpenAPI document, against the other
transport (same matrix), against ``Previews.preview`` called in process (what
the web console calls), and, for the sample users of every changed cell,
against the decision endpoint pinned to each version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from strata.config import Settings
from strata.registry.serving import ActiveRulesets
from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine, migrate
from strata.store.population import generate_population
from strata.transport.convert import message_to_json
from strata.transport.preview_operations import preview_message
from strata.wiring import build_services
from tests.conftest import RULES_DIR
from tests.e2e.conftest import Outcome
from tests.integration.conftest import LiveServers
from tests.integration.preview_cases import AS_OF
from tests.integration.test_registry_api import documented

USERS = 300
JOURNEY = "lifecycle.journey"
AS_OF_TEXT = "2026-03-10T12:00:00Z"
TEXT = (RULES_DIR / f"{JOURNEY}.yaml").read_text(encoding="utf-8").split("\ntests:")[0]
CHURN_45 = TEXT.replace("churn_days: 30 ", "churn_days: 45 ")  # its test cases expect 30: dropped
FALLS_BACK = TEXT.replace(
    "when: active_days_7d >= active_min_days", "when: active_days_7d >= active_min_days and points % 2 == 0"
)


@pytest.fixture
def served(live: LiveServers) -> LiveServers:
    """The live servers with a population stored and journey's churn-45 file published as v2."""
    services = live.services
    ProfileStore(services.engine, services.previews.schema).import_profiles(
        generate_population(USERS, seed=7, as_of=AS_OF)
    )
    services.registry.publish(CHURN_45, "ana", "churn after 45 days")
    assert isinstance(services.decisions.rulesets, ActiveRulesets)
    services.decisions.rulesets.refresh()  # the decision endpoint knows v2 now, not within the second
    return live


def same_answer(rest: Outcome, grpc_outcome: Outcome) -> dict[str, Any]:
    """Both transports' bodies, equal but for the time each took; the REST one."""
    body = documented("Preview", rest)
    assert grpc_outcome.ok, grpc_outcome.body
    assert {**body, "elapsed_seconds": 0} == {**grpc_outcome.body, "elapsed_seconds": 0}
    return body


def stage(live: LiveServers, user_id: str, ruleset: str, token: str) -> str:
    request = {"user_id": user_id, "ruleset": ruleset, "as_of": AS_OF_TEXT}
    outcome = live.clients.grpc("ClassifyLifecycle", request, token=token)
    assert outcome.ok, outcome.body
    return str(outcome.body["stage"])


def test_a_stored_candidate_against_the_active_version_over_both_transports(served: LiveServers) -> None:
    reader = served.token("reader")
    request = {"name": JOURNEY, "candidate": "2", "as_of": AS_OF_TEXT}
    body = same_answer(*served.clients.both("Preview", request, token=reader))

    assert (body["ruleset"], body["kind"], body["method"]) == (JOURNEY, "lifecycle", "sql")
    assert (body["candidate"]["label"], body["baseline"]["label"]) == ("v2", "active (v1)")
    assert body["database"] == served.services.engine.dialect.name and body["as_of"] == AS_OF_TEXT
    assert body["fallbacks"] == [] and body["elapsed_seconds"] > 0
    counts = [int(cell["count"]) for cell in body["cells"]]
    assert sum(counts) == int(body["total"]) == USERS
    for side, key in (("before", "from_class"), ("after", "to_class")):
        per_class = {
            name: sum(int(c["count"]) for c in body["cells"] if c[key] == name) for name in body[side]
        }
        assert {name: int(count) for name, count in body[side].items()} == per_class
    moved = [cell for cell in body["cells"] if cell["from_class"] != cell["to_class"]]
    assert int(body["changed"]) == sum(int(cell["count"]) for cell in moved) > 0
    assert {(cell["from_class"], cell["to_class"]) for cell in moved} <= {
        ("churned", "declining"),
        ("churned", "recalled"),
    }
    assert all(cell["samples"] == [] for cell in body["cells"] if cell["from_class"] == cell["to_class"])
    for cell in moved:  # each sample user really moves: ask the decision endpoint, pinned to each version
        assert 1 <= len(cell["samples"]) <= 2
        for user_id in cell["samples"]:
            assert stage(served, user_id, f"{JOURNEY}@1", reader) == cell["from_class"]
            assert stage(served, user_id, f"{JOURNEY}@2", reader) == cell["to_class"]

    in_process = served.services.previews.preview(JOURNEY, candidate="2", as_of=AS_OF)
    assert {**message_to_json(preview_message(in_process)), "elapsed_seconds": 0} == {
        **body,
        "elapsed_seconds": 0,
    }


def test_an_unpublished_candidate_and_one_sql_cannot_express(served: LiveServers) -> None:
    reader = served.token("reader")
    stored = served.clients.rest(
        "Preview", {"name": JOURNEY, "candidate": "2", "as_of": AS_OF_TEXT}, token=reader
    ).body
    request = {"name": JOURNEY, "candidate_content": CHURN_45, "against": "1", "as_of": AS_OF_TEXT}
    inline = same_answer(*served.clients.both("Preview", request, token=reader))
    assert (inline["candidate"]["label"], inline["baseline"]["label"]) == ("request content", "v1")
    assert inline["candidate"]["checksum"] == stored["candidate"]["checksum"]  # v2 is the same file
    assert inline["cells"] == stored["cells"]

    fallback = same_answer(
        *served.clients.both(
            "Preview", {"name": JOURNEY, "candidate_content": FALLS_BACK, "as_of": AS_OF_TEXT}, token=reader
        )
    )
    assert fallback["method"] == "python"
    assert [(f["side"], f["rule"], f["field"]) for f in fallback["fallbacks"]] == [
        ("candidate", "active", "stages.5.when")
    ]
    assert "modulo (%) is not translated" in fallback["fallbacks"][0]["reason"]
    assert sum(int(cell["count"]) for cell in fallback["cells"]) == USERS
    assert {
        (c["from_class"], c["to_class"]) for c in fallback["cells"] if c["from_class"] != c["to_class"]
    } <= {("active", "retained")}


def test_mistakes_are_refused_alike_over_both_transports(served: LiveServers) -> None:
    reader = served.token("reader")
    cases: dict[str, tuple[dict[str, Any], str, str]] = {
        "unknown ruleset": ({"name": "lifecycle.nope", "candidate": "1"}, "not_found", "lifecycle.nope"),
        "unknown version": ({"name": JOURNEY, "candidate": "9"}, "not_found", "9"),
        "unknown alias": ({"name": JOURNEY, "candidate": "2", "against": "canary"}, "not_found", "canary"),
        "no candidate": ({"name": JOURNEY}, "invalid_argument", "one candidate"),
        "two candidates": (
            {"name": JOURNEY, "candidate": "2", "candidate_content": CHURN_45},
            "invalid_argument",
            "one candidate",
        ),
        "broken file": (
            {"name": JOURNEY, "candidate_content": TEXT.replace("active_days_7d >=", "active_days_7d >>")},
            "invalid_argument",
            "",
        ),
        "another ruleset's file": (
            {"name": JOURNEY, "candidate_content": (RULES_DIR / "segment.rfm.yaml").read_text()},
            "invalid_argument",
            "is the ruleset 'segment.rfm', not 'lifecycle.journey'",
        ),
        "not a classifying kind": (
            {"name": "incentive.levels", "candidate": "1"},
            "invalid_argument",
            "does not put profiles in classes",
        ),
    }
    for what, (request, code, words) in cases.items():
        rest, grpc_outcome = served.clients.both("Preview", request, token=reader)
        assert rest.code == grpc_outcome.code == code, (what, rest.body, grpc_outcome.body)
        assert rest.body == grpc_outcome.body, what
        assert words in str(rest.body), (what, rest.body)
    broken = served.clients.rest("Preview", cases["broken file"][0], token=reader).body
    assert broken["errors"][0]["file"] == f"<{JOURNEY} candidate>"


def test_who_may_preview_and_a_deadline_that_passes(served: LiveServers) -> None:
    request, reader = {"name": JOURNEY, "candidate": "2"}, served.token("reader")
    for outcome in served.clients.both("Preview", request):
        assert outcome.code == "unauthenticated", outcome.body
    late = served.clients.rest_raw(
        "POST",
        f"/v1/rulesets/{JOURNEY}:preview",
        b'{"candidate": "2"}',
        {"Authorization": f"Bearer {reader}", "Grpc-Timeout": "1n"},
    )
    assert (late.code, late.status) == ("deadline_exceeded", 504)
    expired = served.clients.grpc("Preview", request, timeout=1e-9, token=reader)
    assert (expired.code, expired.status) == ("deadline_exceeded", grpc.StatusCode.DEADLINE_EXCEEDED)


def test_previews_read_profiles_from_the_read_database(tmp_path: Path) -> None:
    """STRATA_READ_DATABASE_URL (a replica, say) holds the profiles previews count; the registry is the primary's."""
    primary, replica = f"sqlite:///{tmp_path / 'primary.db'}", f"sqlite:///{tmp_path / 'replica.db'}"
    migrate(replica)
    engine = make_engine(replica)
    ProfileStore(engine, load_schema(RULES_DIR / "profile.yaml")).import_profiles(
        generate_population(40, seed=3, as_of=AS_OF)
    )
    engine.dispose()
    settings = Settings(database_url=primary, rules_dir=RULES_DIR, read_database_url=replica)
    services = build_services(settings, run_migrations=True)
    result = services.previews.preview(JOURNEY, candidate="1", as_of=AS_OF)
    assert (result.total, result.changed, result.baseline.label) == (40, 0, "active (v1)")
    assert ProfileStore(services.engine, services.previews.schema).count() == 0  # none on the primary
    services.engine.dispose()
    services.previews.engine.dispose()
