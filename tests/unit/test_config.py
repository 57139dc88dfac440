"""Settings from STRATA_* variables: defaults for a bare machine, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.config import RequestLimits, Settings
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
            "STRATA_REQUIRE_TOKENS": "1",
            "STRATA_GRPC_WORKERS": "4",
            "STRATA_GRPC_PROCESSES": "2",
        }
    )
    assert settings == Settings(
        "postgresql://db/strata",
        Path("/srv/rules"),
        6000,
        8080,
        grpc_workers=4,
        grpc_processes=2,
        require_tokens=True,
    )


@pytest.mark.parametrize("variable", ["STRATA_GRPC_WORKERS", "STRATA_GRPC_PROCESSES"])
@pytest.mark.parametrize("value", ["0", "four"])
def test_a_bad_number_of_grpc_workers_or_processes_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="STRATA_HTTP_PORT"):
        Settings.from_env({"STRATA_HTTP_PORT": value})


@pytest.mark.parametrize(("value", "required"), [("", False), ("0", False), ("true", True), ("YES", True)])
def test_require_tokens_is_a_flag(value: str, required: bool) -> None:
    assert Settings.from_env({"STRATA_REQUIRE_TOKENS": value}).require_tokens is required


def test_a_bad_flag_names_the_variable() -> None:
    with pytest.raises(ValueError, match="STRATA_REQUIRE_TOKENS='maybe'"):
        Settings.from_env({"STRATA_REQUIRE_TOKENS": "maybe"})


def test_a_console_secret_too_short_to_be_safe_is_refused() -> None:
    assert Settings.from_env({"STRATA_CONSOLE_SECRET": "s" * 32}).console_secret == "s" * 32
    with pytest.raises(ValueError, match="STRATA_CONSOLE_SECRET: at least 32 characters"):
        Settings.from_env({"STRATA_CONSOLE_SECRET": "short"})


def test_the_decision_log_share_and_the_metrics_port() -> None:
    settings = Settings.from_env({"STRATA_DECISION_LOG_SHARE": "0.25", "STRATA_METRICS_PORT": "9100"})
    assert (settings.decision_log_share, settings.metrics_port) == (0.25, 9100)
    assert (Settings.from_env({}).decision_log_share, Settings.from_env({}).metrics_port) == (1.0, 0)
    for share in ("1.5", "-0.1", "half"):
        with pytest.raises(ValueError, match="STRATA_DECISION_LOG_SHARE"):
            Settings.from_env({"STRATA_DECISION_LOG_SHARE": share})
    with pytest.raises(ValueError, match="STRATA_METRICS_PORT"):
        Settings.from_env({"STRATA_METRICS_PORT": "70000"})


def test_request_limits_database_timeout_and_saved_rules_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "STRATA_MAX_BODY_BYTES": "1024",
            "STRATA_MAX_DEPTH": "8",
            "STRATA_DATABASE_TIMEOUT": "0.5",
            "STRATA_RULES_SNAPSHOT": "/srv/strata/rules.json",
        }
    )
    assert (settings.limits.max_body_bytes, settings.limits.max_depth) == (1024, 8)
    assert settings.limits.max_message_bytes == RequestLimits().max_message_bytes
    assert settings.database_timeout == 0.5
    assert settings.rules_snapshot == "/srv/strata/rules.json"


def test_saved_rules_default_to_a_file_per_database() -> None:
    one, other = Settings("sqlite:///a.db"), Settings("postgresql://db/strata")
    assert one.rules_snapshot.startswith("var/rules-") and one.rules_snapshot != other.rules_snapshot


@pytest.mark.parametrize(
    ("name", "value"),
    [("STRATA_MAX_LIST_ITEMS", "0"), ("STRATA_MAX_STRING_CHARS", "many"), ("STRATA_DATABASE_TIMEOUT", "-1")],
)
def test_a_bad_limit_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})
