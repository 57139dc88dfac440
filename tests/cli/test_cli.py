"""The `strata` command, driven through a subprocess as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import RULES_DIR

STRATA = [sys.executable, "-m", "strata"]


def strata(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STRATA, *map(str, args)], capture_output=True, text=True, timeout=120)


def copy_rules(tmp_path: Path, *names: str) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(RULES_DIR / "profile.yaml", target)
    for name in names:
        shutil.copy(RULES_DIR / name, target)
    return target


def test_rules_test_passes_on_the_default_rules() -> None:
    result = strata("rules", "test", RULES_DIR / "lifecycle.duolingo.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS lifecycle.duolingo: first day ever is new" in result.stdout
    assert " 0 failed" in result.stdout


def test_a_failing_case_prints_expected_against_actual(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path, "lifecycle.duolingo.yaml")
    path = rules / "lifecycle.duolingo.yaml"
    path.write_text(path.read_text().replace("expect: {stage: dormant}", "expect: {stage: current}"))
    result = strata("rules", "test", path)
    assert result.returncode == 1
    assert "FAIL lifecycle.duolingo: nothing in 30 days is dormant" in result.stdout
    assert "stage: expected 'current', got 'dormant'" in result.stdout


def test_check_reports_file_line_rule_and_field(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path, "lifecycle.duolingo.yaml")
    path = rules / "lifecycle.duolingo.yaml"
    path.write_text(
        path.read_text().replace("when: active_today and active_d1_d6", "when: active_today and activ_d1")
    )
    result = strata("rules", "check", path)
    assert result.returncode == 2
    assert f"{path}:11: rule 'current': stages.1.when: unknown fact 'activ_d1'" in result.stderr


def test_check_accepts_a_good_file() -> None:
    result = strata("rules", "check", RULES_DIR / "lifecycle.duolingo.yaml")
    assert result.returncode == 0 and "ok lifecycle.duolingo" in result.stdout


def test_eval_prints_json_with_explanation(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(
        json.dumps({"user_id": "u1", "activity_dates": ["2026-03-08"], "first_active_date": "2026-01-01"})
    )
    result = strata(
        "eval", "--rules", RULES_DIR / "lifecycle.duolingo.yaml", "--profile", profile,
        "--as-of", "2026-03-10T12:00:00Z", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["stage"] == "at_risk_wau"
    assert decision["ruleset"] == "lifecycle.duolingo" and decision["checksum"].startswith("sha256:")
    (hit,) = decision["explanation"]
    assert hit["rule"] == "at_risk_wau"
    assert hit["facts"] == {"active_d1_d6": True, "active_today": False}


def test_eval_renders_a_table(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"user_id": "u1"}))
    result = strata(
        "eval",
        "--rules",
        RULES_DIR / "lifecycle.duolingo.yaml",
        "--profile",
        profile,
        "--as-of",
        "2026-03-10",
    )
    assert result.returncode == 0, result.stderr
    assert "dormant" in result.stdout and "not active in the last 30 days" in result.stdout


def test_eval_refuses_a_profile_value_of_the_wrong_type(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"user_id": "u1", "posts_30d": "many"}))
    result = strata("eval", "--rules", RULES_DIR / "lifecycle.duolingo.yaml", "--profile", profile)
    assert result.returncode == 2
    assert "invalid_argument" in result.stderr and "posts_30d: expected an integer" in result.stderr
