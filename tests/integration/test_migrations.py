"""Migrations: an empty database comes up to head, twice is harmless, models and migrations agree."""

from __future__ import annotations

import dataclasses
import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from strata.engine.schema import ProfileSchema
from strata.store import ProfileStore, SchemaNotReady, make_engine, migrate, require_migrated
from strata.store.migrate import alembic_config, current_revision, head_revision
from strata.store.models import PROFILES, Base
from strata.store.population import generate_population
from tests.integration.preview_cases import AS_OF


def test_migrate_creates_the_schema_on_an_empty_database(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    with pytest.raises(SchemaNotReady, match="run `strata db migrate`"):
        require_migrated(engine)

    assert migrate(database_url) == head_revision() == "0005"
    require_migrated(engine)
    tables = inspect(engine)
    registry = {
        "ruleset_versions",
        "ruleset_heads",
        "aliases",
        "ruleset_splits",
        "ruleset_shadows",
        "audit_log",
        "api_tokens",
    }
    assert {"profiles", "alembic_version", *registry} <= set(tables.get_table_names())
    assert {index["name"] for index in tables.get_indexes("profiles")} == {
        "ix_profiles_registered_at",
        "ix_profiles_last_active_at",
        "ix_profiles_last_order_at",
        "ix_profiles_updated_at",
    }
    assert migrate(database_url) == "0005"  # idempotent: safe on every start
    engine.dispose()


def test_the_models_match_the_migrations(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_a_profile_schema_the_table_cannot_hold_is_refused_at_start(schema: ProfileSchema) -> None:
    fields = {name: field for name, field in schema.fields.items() if name != "spend_365d"}
    fields["points"] = dataclasses.replace(fields["points"], type=schema.fields["tags"].type)
    changed = ProfileSchema(list(fields.values()))
    with pytest.raises(ValueError, match="write a migration") as info:
        ProfileStore(make_engine("sqlite://"), changed)
    assert "spend_365d: the profiles table stores this field; the schema lacks it" in str(info.value)
    assert "points: the profiles table stores it as integer" in str(info.value)


def test_0005_fills_the_active_days_of_stored_profiles_as_the_store_writes_them(
    database_url: str, schema: ProfileSchema
) -> None:
    """Profiles stored before 0005 get the days new writes get (``every_active_day``)."""
    migrate(database_url)
    engine = make_engine(database_url)
    ProfileStore(engine, schema).import_profiles(generate_population(300, seed=4, as_of=AS_OF))
    query = select(PROFILES.c.user_id, PROFILES.c.active_days).order_by(PROFILES.c.user_id)
    with engine.connect() as connection:
        written = connection.execute(query).all()
    assert any(len(days if isinstance(days, list) else json.loads(days)) > 1 for _, days in written)

    command.downgrade(alembic_config(database_url), "0004")
    assert "active_days" not in {column["name"] for column in inspect(engine).get_columns("profiles")}
    migrate(database_url)
    with engine.connect() as connection:
        assert connection.execute(query).all() == written
    engine.dispose()
