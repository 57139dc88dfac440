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

import requests
from prometheus_client.parser import text_string_to_metric_families
from strata_client import StrataClient

from tests.console_forms import csrf_of
from tests.net import free_port


def test_serve_demo_with_gunicorn_answers_on_both_transports(tmp_path: Path) -> None:
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    env = {**os.environ, "STRATA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    command = [
        sys.executable, "-m", "strata", "serve", "--demo", "--rest", "gunicorn",
        "--grpc-port", str(grpc_port), "--http-port", str(http_port), "--grace", "2",
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    server = subprocess.Popen(  # in tmp_path: the demo writes its console secret and token to ./var
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
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
        token = (tmp_path / "var" / "console-token").read_text().strip()
        assert_console_sessions_work(f"http://127.0.0.1:{http_port}/console", token)
        assert_metrics_add_up(f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{metrics_port}")
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert f"curl -s http://localhost:{http_port}/v1/lifecycle:classify" in stdout
    assert "grpcurl -plaintext" in stdout
    assert f"Console  http://localhost:{http_port}/console" in stdout


def assert_console_sessions_work(console: str, token: str) -> None:
    """Sign in with the demo's token; both gunicorn workers accept the session (one shared secret).

    The cookie is ``Secure``, which ``requests`` will not send over plain HTTP, so it is sent by hand.
    """
    page = requests.get(f"{console}/signin", timeout=5)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    form = {"token": token, "csrf_token": csrf_of(page.text)}
    signed_in = requests.post(
        f"{console}/signin", data=form, headers={"Cookie": cookie}, allow_redirects=False, timeout=5
    )
    assert signed_in.status_code == 302, signed_in.text
    session = {"Cookie": signed_in.headers["Set-Cookie"].split(";")[0]}
    for _ in range(6):  # new connections: gunicorn hands them to either worker
        response = requests.get(f"{console}/", headers=session, allow_redirects=False, timeout=5)
        assert response.status_code == 200
        assert "lifecycle.duolingo" in response.text


def decisions_counted(metrics_url: str) -> float:
    """``strata_decisions_total`` of the active lifecycle.duolingo, from one Prometheus exposition."""
    text = requests.get(f"{metrics_url}/metrics", timeout=5).text
    families = text_string_to_metric_families(text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "strata_decisions_total"
        and sample.labels["ruleset"] == "lifecycle.duolingo"
        and sample.labels["why"] == "active"
    )


def assert_metrics_add_up(rest: str, grpc_metrics: str) -> None:
    """REST's /metrics adds up every gunicorn worker; the gRPC process serves its own on --metrics-port."""
    before = decisions_counted(rest)
    for _ in range(6):  # new connections: gunicorn hands them to either worker
        answer = requests.post(f"{rest}/v1/lifecycle:classify", json={"user_id": "demo-current"}, timeout=5)
        assert answer.status_code == 200 and answer.headers["X-Request-Id"]
    assert decisions_counted(rest) - before == 6
    assert decisions_counted(grpc_metrics) == 1  # the one gRPC call above
