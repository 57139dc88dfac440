"""Settings from STRATA_* variables: defaults for a bare machine, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.config import Settings
from tests.conftest import RULES_DIR


def test_an_empty_environment_gives_the_embedded_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings("sqlite:///var/strata.db", RULES_DIR, 50051, 8080)
    assert settings.profile_schema_path == RULES_DIR / "profile.yaml"
    assert settings.profile_schema_path.is_file()


def test_variables_override_and_empty_ones_do_not() -> None:
    settings = Settings.from_env(
        {
            "STRATA_DATABASE_URL": "postgresql://db/strata",
            "STRATA_RULES_DIR": "/srv/rules",
            "STRATA_GRPC_PORT": "6000",
            "STRATA_HTTP_PORT": "",
        }
    )
    assert settings == Settings("postgresql://db/strata", Path("/srv/rules"), 6000, 8080)


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="STRATA_HTTP_PORT"):
        Settings.from_env({"STRATA_HTTP_PORT": value})
