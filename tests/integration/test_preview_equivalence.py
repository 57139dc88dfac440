"""The preview's SQL gives every profile the class the Python engine gives it, on SQLite and Postgres.

Each backend gets one database (module scope) holding a generated population;
edge-case profiles drawn by Hypothesis are added and removed per example. The
reference is the engine itself: ``ruleset.evaluate(document, as_of)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.engine import CompiledRuleset
from strata.engine.decision import LifecycleDecision, SegmentDecision
from strata.engine.schema import ProfileSchema
from strata.errors import DeadlineExceeded, RuleFileError
from strata.preview import Version, run_preview
from strata.preview.classify import RulesetNotCompilable, SqlScope, outcomes, ruleset_case
from strata.preview.dialects import dialect_for
from strata.rulefiles.loader import compile_rule_file, load_paths, load_schema, parse_rule_file
from strata.store import ProfileStore, make_engine, migrate
from strata.store.models import PROFILES
from strata.store.population import generate_population
from tests.conftest import RULES_DIR
from tests.integration.preview_cases import (
    AS_OF,
    EDGE_PREFIX,
    as_of_instants,
    conditions,
    edge_profiles,
    lifecycle_file,
)

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")  # e.g. an accidental cross join

POPULATION = 3000
CLASSIFYING = ["lifecycle.duolingo", "lifecycle.journey", "segment.pyramid", "segment.rfm"]
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# What SQLite may refuse to translate (it has no exact decimals); Postgres translates the whole subset.
SQLITE_REFUSALS = re.compile(r"SQLite has no exact decimal")


@dataclass
class Database:
    engine: sa.Engine
    store: ProfileStore
    schema: ProfileSchema
    documents: dict[str, dict[str, Any]]  # the population, by user id


@pytest.fixture(scope="module")
def rulesets() -> dict[str, CompiledRuleset[Any]]:
    loaded, _ = load_paths([RULES_DIR])
    return {name: loaded.compiled[name] for name in CLASSIFYING}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated database holding the generated population."""
    server = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('preview') / 'preview.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database().render_as_string(hide_password=False)
    migrate(url)
    engine = make_engine(url, pool_size=2)
    schema = load_schema(RULES_DIR / "profile.yaml")
    store = ProfileStore(engine, schema)
    population = list(generate_population(POPULATION, seed=11, as_of=AS_OF))
    store.import_profiles(population)
    try:
        yield Database(engine, store, schema, {profile["user_id"]: profile for profile in population})
    finally:
        engine.dispose()
        if server is not None:
            server.drop_database(sa.make_url(url))


def engine_class(ruleset: CompiledRuleset[Any], document: dict[str, Any], as_of: dt.datetime) -> str:
    decision = ruleset.evaluate(document, as_of)
    assert isinstance(decision, LifecycleDecision | SegmentDecision)
    return decision.stage if isinstance(decision, LifecycleDecision) else decision.segment


def sql_classes(
    engine: sa.Engine, ruleset: CompiledRuleset[Any], as_of: dt.datetime, where: Any = None
) -> dict[str, str]:
    """Each profile's class under ``ruleset``, computed by the compiled CASE in the database."""
    dialect = dialect_for(engine.dialect.name, as_of)
    case = ruleset_case(ruleset, SqlScope(dialect, ruleset.schema), "t")
    query = dialect.select(PROFILES.c.user_id, case, where=where)
    classes = outcomes(ruleset)
    with dialect.session(engine, 60) as connection:
        return {user_id: classes[index] for user_id, index in connection.execute(query)}


def assert_same_classes(
    database: Database,
    ruleset: CompiledRuleset[Any],
    as_of: dt.datetime,
    documents: dict[str, dict[str, Any]],
    where: Any = None,
) -> None:
    got = sql_classes(database.engine, ruleset, as_of, where)
    expected = {user_id: engine_class(ruleset, document, as_of) for user_id, document in documents.items()}
    wrong = {
        user_id: (got.get(user_id), want) for user_id, want in expected.items() if got.get(user_id) != want
    }
    assert not wrong, f"{ruleset.name} at {as_of}: SQL vs engine differ for {len(wrong)}: " + str(
        [(user_id, documents[user_id], pair) for user_id, pair in list(wrong.items())[:3]]
    )


@pytest.mark.parametrize("as_of", [AS_OF, dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)])
def test_default_rulesets_agree_with_the_engine_on_the_population(
    database: Database, rulesets: dict[str, CompiledRuleset[Any]], as_of: dt.datetime
) -> None:
    for ruleset in rulesets.values():
        assert_same_classes(database, ruleset, as_of, database.documents)


class EdgeProfiles:
    """Hypothesis' profiles, stored for one example and removed after it."""

    def __init__(self, database: Database, profiles: tuple[dict[str, Any], ...]) -> None:
        self.database = database
        self.documents = {profile["user_id"]: profile for profile in profiles}

    def __enter__(self) -> dict[str, dict[str, Any]]:
        self.database.store.import_profiles(self.documents.values())
        return self.documents

    def __exit__(self, *exc: object) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(sa.delete(PROFILES).where(PROFILES.c.user_id.startswith(EDGE_PREFIX)))


@EXAMPLES
@given(profiles=edge_profiles, as_of=as_of_instants)
def test_default_rulesets_agree_with_the_engine_on_edge_profiles(
    database: Database,
    rulesets: dict[str, CompiledRuleset[Any]],
    profiles: tuple[dict[str, Any], ...],
    as_of: dt.datetime,
) -> None:
    with EdgeProfiles(database, profiles) as documents:
        for ruleset in rulesets.values():
            assert_same_classes(
                database, ruleset, as_of, documents, PROFILES.c.user_id.startswith(EDGE_PREFIX)
            )


@EXAMPLES
@given(whens=st.lists(conditions, min_size=1, max_size=3), profiles=edge_profiles, as_of=as_of_instants)
def test_random_expressions_agree_with_the_engine(
    database: Database, whens: list[str], profiles: tuple[dict[str, Any], ...], as_of: dt.datetime
) -> None:
    try:
        ruleset = compile_rule_file(parse_rule_file(lifecycle_file(whens)), database.schema)
    except RuleFileError:
        return  # the engine refuses it (a type the generator did not foresee): nothing to compare
    sample = {user_id: document for user_id, document in database.documents.items() if user_id <= "u0000300"}
    with EdgeProfiles(database, profiles) as documents:
        where = sa.or_(PROFILES.c.user_id <= "u0000300", PROFILES.c.user_id.startswith(EDGE_PREFIX))
        try:
            assert_same_classes(database, ruleset, as_of, {**sample, **documents}, where)
        except RulesetNotCompilable as exc:
            refusals = [f.reason for f in exc.fallbacks]
            assert database.engine.dialect.name == "sqlite", f"Postgres refused {whens}: {refusals}"
            assert all(SQLITE_REFUSALS.search(reason) for reason in refusals), refusals


def _changed(name: str, old: str, new: str) -> CompiledRuleset[Any]:
    text = (RULES_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    assert old in text
    return compile_rule_file(
        parse_rule_file(text.replace(old, new).split("\ntests:")[0]), load_schema(RULES_DIR / "profile.yaml")
    )


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("lifecycle.journey", "churn_days: 30 ", "churn_days: 45 "),
        (
            "lifecycle.duolingo",
            "when: active_today and active_d1_d6",
            "when: active_today and active_days_7d >= 3",
        ),
        ("segment.rfm", "[7, 30, 90, 180]", "[14, 30, 60, 120]"),
    ],
)
def test_the_matrix_is_the_same_in_sql_and_in_python(
    database: Database, rulesets: dict[str, CompiledRuleset[Any]], name: str, old: str, new: str
) -> None:
    candidate, baseline = Version("candidate", _changed(name, old, new)), Version("active", rulesets[name])
    in_sql = run_preview(database.engine, candidate, baseline, AS_OF)
    in_python = run_preview(database.engine, candidate, baseline, AS_OF, force_python=True)
    assert (in_sql.method, in_python.method) == ("sql", "python")
    assert in_sql.total == POPULATION and 0 < in_sql.changed < POPULATION
    same = {key: value for key, value in in_sql.to_dict().items() if key not in ("method", "elapsed_s")}
    assert same == {
        key: value for key, value in in_python.to_dict().items() if key not in ("method", "elapsed_s")
    }
    changed = [cell for cell in in_sql.cells if cell.changed]
    assert changed and all(cell.samples for cell in changed)
    assert sum(in_sql.before.values()) == sum(in_sql.after.values()) == POPULATION


def test_rules_outside_the_subset_fall_back_to_python_and_say_which(
    database: Database, rulesets: dict[str, CompiledRuleset[Any]]
) -> None:
    candidate = _changed(
        "segment.pyramid",
        "when: shares_30d + comments_30d + likes_given_30d >= active_min_interactions_30d",
        "when: (shares_30d + comments_30d) / 2 >= 5 or timezone =~ 'Asia/.*'",
    )
    result = run_preview(
        database.engine,
        Version("candidate", candidate),
        Version("active", rulesets["segment.pyramid"]),
        AS_OF,
    )
    assert result.method == "python"
    assert [(f.side, f.rule, f.field) for f in result.fallbacks] == [
        ("candidate", "active", "segments.2.when")
    ]
    assert "is not translated to SQL" in result.fallbacks[0].reason
    assert result.total == POPULATION and result.changed > 0


def test_a_preview_past_its_timeout_is_cancelled(
    database: Database, rulesets: dict[str, CompiledRuleset[Any]]
) -> None:
    journey = Version("active", rulesets["lifecycle.journey"])
    with pytest.raises(DeadlineExceeded):
        run_preview(database.engine, journey, journey, AS_OF, timeout_s=0.001)


def test_the_session_is_a_read_only_snapshot(database: Database) -> None:
    dialect = dialect_for(database.engine.dialect.name, AS_OF)
    count = sa.select(sa.func.count()).select_from(PROFILES)
    with dialect.session(database.engine, 60) as connection:
        before = connection.execute(count).scalar()
        with EdgeProfiles(database, ({**database.documents["u0000001"], "user_id": f"{EDGE_PREFIX}0001"},)):
            assert connection.execute(count).scalar() == before  # another writer's row is not seen
        with pytest.raises(sa.exc.DBAPIError):
            connection.execute(sa.delete(PROFILES))
