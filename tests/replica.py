"""``python -m strata serve`` as a child process on free ports, for tests of whole replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.net import free_port


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still loading its rules
                pass
            assert time.monotonic() < deadline, f"not ready: {self.log.read_text()}"
            time.sleep(0.2)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, then the exit code (killed if it has not exited within ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_replica(database_url: str, log: Path, *options: str, env: dict[str, str] | None = None) -> Replica:
    """A ``strata serve`` on ``database_url`` with ``options``; its output goes to ``log``."""
    grpc_port, http_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "strata", "serve", "--grpc-port", str(grpc_port),
        "--http-port", str(http_port), "--grace", "2", *options,
    ]  # fmt: skip
    environ = {**os.environ, "STRATA_DATABASE_URL": database_url, **(env or {})}
    with log.open("wb") as output:  # a file, not a pipe: request logs must never block the server
        process = subprocess.Popen(command, env=environ, stdout=output, stderr=subprocess.STDOUT)
    return Replica(process, grpc_port, http_port, log)
