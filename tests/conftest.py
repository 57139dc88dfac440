"""Shared fixtures: paths that do not depend on the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    return RULES_DIR
