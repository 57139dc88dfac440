"""`strata rules check` on hostile files: each refused at its file, line and rule, with what limit it broke.

One subprocess checks every hostile file at once (the check reports every
failing file), as an ops person would run it before publishing; files refused
while they are read (YAML, structure) stop the check before anything
compiles, so they get their own run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from strata.engine.limits import LIMITS
from tests.cli.test_cli import STRATA, copy_rules, strata
from tests.hostile.rules_cases import (
    ALL_REFUSALS,
    LIMIT_BREAKERS,
    NAME,
    REGEX_REFUSALS,
    WHEN_LINE,
    Refusal,
    lifecycle,
)


def _check_reports(tmp_path: Path, refusals: dict[str, Refusal]) -> None:
    rules = copy_rules(tmp_path)
    paths = {}
    for index, (case, refusal) in enumerate(refusals.items()):
        paths[case] = rules / f"hostile{index}.yaml"
        paths[case].write_text(refusal.content.replace(NAME, f"lifecycle.hostile{index}"))
    result = strata("rules", "check", rules)
    report = result.stdout + result.stderr
    assert result.returncode == 2, report
    assert "Traceback" not in report
    for case, refusal in refusals.items():
        found = [
            line for line in report.splitlines() if str(paths[case]) in line and refusal.fragment in line
        ]
        assert found, f"{case}: {refusal.fragment!r} not reported for {paths[case].name}:\n{report}"
        if refusal.line == WHEN_LINE:
            assert f"{paths[case]}:{WHEN_LINE}: rule 'hostile': stages.0.when: " in found[0], found[0]
        elif refusal.line is not None:
            assert f"{paths[case]}:{refusal.line}: " in found[0], found[0]
        if (
            case in LIMIT_BREAKERS and not refusal.read
        ):  # pydantic words its own  # what limit, the value, the maximum
            assert "the maximum is" in found[0], found[0]


@pytest.mark.parametrize("stage", ["read", "compile"])
def test_every_hostile_file_is_refused_at_its_line_with_its_reason(tmp_path: Path, stage: str) -> None:
    _check_reports(tmp_path, {k: r for k, r in ALL_REFUSALS.items() if r.read == (stage == "read")})


def test_a_file_at_every_maximum_checks(tmp_path: Path) -> None:
    at_the_limits = [
        "not " * (LIMITS.depth - 3) + "active_today",  # with the statement and the comparison: depth 100
        f"user_id == '{'a' * LIMITS.literal_chars}'",
        f"points in [{','.join('1' * LIMITS.literal_items)}]",
        f"[x for x in $range({LIMITS.range_items})] != []",
        "[x for x in tags if x in badges] == []",
        "user_id =~ '(a+)+$' or user_id =~~ '[a-z]+' or user_id !~ '^x'",
    ]
    rules = copy_rules(tmp_path)
    for index, when in enumerate(at_the_limits):
        (rules / f"ok{index}.yaml").write_text(lifecycle(when, name=f"lifecycle.ok{index}"))
    result = strata("rules", "check", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok lifecycle.ok") == len(at_the_limits)


def test_strata_rules_publish_refuses_a_hostile_file_and_stores_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "STRATA_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*STRATA, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("db", "migrate").returncode == 0
    path = tmp_path / "hostile.yaml"
    path.write_text(REGEX_REFUSALS["backreference"].content)
    published = run("rules", "publish", str(path), "--author", "ops")
    assert published.returncode == 2, published.stdout + published.stderr
    assert (
        f"{path}:{WHEN_LINE}: rule 'hostile': stages.0.when: regex '(a)\\\\1' is refused by RE2"
        in published.stderr
    )
    assert NAME not in run("rules", "list").stdout
