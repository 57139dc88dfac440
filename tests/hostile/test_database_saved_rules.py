"""The last known good rules file: written whole or not at all, served only for its own database."""

from __future__ import annotations

from pathlib import Path

from strata.registry.saved import SavedRules, SavedRulesFile
from strata.splits import Split
from tests.conftest import RULES_DIR

DATABASE = "postgresql+psycopg://strata@db/strata"
TEXT = (RULES_DIR / "lifecycle.duolingo.yaml").read_text()
RULES = SavedRules(
    active={"lifecycle.duolingo": 2},
    splits={"lifecycle.duolingo": Split((2, 3), (0.5, 0.5), "exp-7", 0.8)},
    texts={("lifecycle.duolingo", 2): TEXT, ("lifecycle.duolingo", 3): TEXT + "\n"},
)


def test_saved_rules_come_back_as_they_were_saved(tmp_path: Path) -> None:
    saved = SavedRulesFile(tmp_path / "var" / "rules.json", DATABASE)
    assert saved.load() is None  # nothing saved yet
    saved.save(RULES)
    assert saved.load() == RULES
    assert [path.name for path in saved.path.parent.iterdir()] == ["rules.json"]  # no temporary left


def test_another_databases_rules_are_not_served(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    SavedRulesFile(path, DATABASE).save(RULES)
    assert SavedRulesFile(path, "postgresql+psycopg://strata@other/strata").load() is None


def test_an_unreadable_file_is_not_served(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"format": 1, "database": ')  # cut short by hand: save never leaves this
    assert SavedRulesFile(path, DATABASE).load() is None


def test_a_save_that_cannot_write_keeps_the_old_file_and_serving_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    saved = SavedRulesFile(path, DATABASE)
    saved.save(RULES)
    blocked = SavedRulesFile(tmp_path / "rules.json" / "inside-a-file.json", DATABASE)
    blocked.save(RULES)  # logged, not raised
    assert saved.load() == RULES
