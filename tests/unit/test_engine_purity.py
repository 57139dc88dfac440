"""The engine imports no framework and does no I/O.

Two checks: a fresh interpreter that imports the engine has loaded none of the
frameworks, and the engine's own source imports only from an allow list (no
os, pathlib, socket, open files: rules and profiles arrive as values).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import strata.engine

FRAMEWORKS = ("flask", "werkzeug", "grpc", "sqlalchemy", "psycopg", "yaml", "requests", "alembic")
ALLOWED_IMPORTS = {
    "__future__", "abc", "bisect", "collections", "dataclasses", "datetime", "decimal", "itertools",
    "math", "re", "typing", "zoneinfo", "functools", "rule_engine", "pydantic", "strata",
    "ast", "operator", "types",  # the expression compiler builds Python functions from rule ASTs
    "re2",  # every regex of a rule runs on RE2
}  # fmt: skip
ENGINE_DIR = Path(strata.engine.__file__).parent


def test_engine_imports_no_framework() -> None:
    code = (
        "import sys, strata.engine, strata.engine.kinds.intervention, strata.engine.kinds.incentive;"
        f"bad = [m for m in {FRAMEWORKS!r} if m in sys.modules]; print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_engine_source_imports_only_pure_modules() -> None:
    for path in ENGINE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED_IMPORTS, f"{path.name} imports {name}"
                if top == "strata":
                    assert name.startswith(("strata.engine", "strata.errors")), f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("open", "exec", "eval", "__import__"), (
                    f"{path.name} calls {node.func.id}"
                )
