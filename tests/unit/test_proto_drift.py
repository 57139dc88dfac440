"""The checked-in generated code is what proto/ generates (the CI drift check, as a test)."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools is a dev dependency")
def test_generated_code_matches_the_protos() -> None:
    result = subprocess.run(
        [ROOT / "scripts" / "check_proto_drift.sh"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
