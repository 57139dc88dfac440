"""`strata serve` in a subprocess, as operators run it, for the hostile-rule tests.

Each server gets a fresh SQLite registry seeded from rules/ and its own time
zone (``TZ``): the hostile suite is run against one under UTC and one under
Asia/Tokyo and must see the same answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import requests

from tests.conftest import RULES_DIR
from tests.e2e.conftest import Clients
from tests.net import free_port

START_SECONDS = 60


@dataclass(frozen=True)
class Served:
    """A running server: both transports through ``clients``, a publisher's token, the process."""

    clients: Clients
    token: str
    process: subprocess.Popen[str]


@contextmanager
def serve(directory: Path, tz: str) -> Iterator[Served]:
    """A `strata serve` process on a new SQLite file in ``directory``, with ``TZ=tz``."""
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "TZ": tz, "STRATA_DATABASE_URL": f"sqlite:///{directory / 'strata.db'}"}
    env.pop("STRATA_REQUIRE_TOKENS", None)
    command = [
        sys.executable, "-m", "strata", "serve", "--migrate", "--rules", str(RULES_DIR),
        "--grpc-port", str(grpc_port), "--http-port", str(http_port), "--grace", "1",
    ]  # fmt: skip
    log = (directory / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        _wait_until_up(f"http://127.0.0.1:{http_port}", process, directory / "server.log")
        token = _publisher_token(env)
        yield Served(Clients(f"http://127.0.0.1:{http_port}", channel), token, process)
    finally:
        channel.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _publisher_token(env: dict[str, str]) -> str:
    """A publisher token, made with `strata tokens create` as an operator would."""
    command = [sys.executable, "-m", "strata", "tokens", "create", "--name", "hostile", "--role", "publisher"]
    created = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
    return next(word for word in created.stdout.split() if word.startswith("strata_"))


def _wait_until_up(base_url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if requests.get(base_url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not become ready:\n" + log.read_text()
        time.sleep(0.2)
