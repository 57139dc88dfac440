"""What `make run` starts: `strata serve --demo --rest gunicorn` on a fresh SQLite file.

Driven as a user would: a subprocess, the printed addresses, the client over
both transports, then SIGTERM and a clean exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from strata_client import StrataClient

from tests.net import free_port


def test_serve_demo_with_gunicorn_answers_on_both_transports(tmp_path: Path) -> None:
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "STRATA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    command = [
        sys.executable, "-m", "strata", "serve", "--demo", "--rest", "gunicorn",
        "--grpc-port", str(grpc_port), "--http-port", str(http_port), "--grace", "2",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rest = StrataClient.rest(f"http://127.0.0.1:{http_port}", timeout=5, retries=0)
        grpc = StrataClient.grpc(f"127.0.0.1:{grpc_port}", timeout=5, retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                by_rest = rest.classify_lifecycle("demo-current")
                break
            except Exception:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the REST server did not come up"
                time.sleep(0.3)
        by_grpc = grpc.classify_lifecycle("demo-current")
        assert by_rest.stage == by_grpc.stage == "current"
        assert by_rest.checksum == by_grpc.checksum
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert f"curl -s http://localhost:{http_port}/v1/lifecycle:classify" in stdout
    assert "grpcurl -plaintext" in stdout
