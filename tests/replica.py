"""``python -m strata serve`` as a child process on free ports, for tests of whole replicas."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import requests

from tests.net import free_port


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    log: Path
    database_url: str

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
    return Replica(process, grpc_port, http_port, log, database_url)


def serving_processes(replica: Replica) -> list[int]:
    """The serving processes ``strata serve --grpc-processes N`` started: its spawned children."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:  # exited meanwhile
                continue
            if parent == replica.process.pid and b"spawn_main" in command:
                pids.append(int(entry.name))
    return pids


ESTABLISHED, LISTEN = "01", "0A"  # TCP states as /proc/net/tcp writes them


def sockets(pid: int, port: int, state: str) -> int:
    """How many TCP sockets of process ``pid`` on its local ``port`` are in ``state``."""
    mine = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            mine.add(os.readlink(fd))
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()  # number, local address, remote address, state, ..., inode
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == state and f"socket:[{fields[9]}]" in mine:
                count += 1
    return count


def channels_to_every_process(replica: Replica, pids: list[int], limit: int = 64) -> list[grpc.Channel]:
    """gRPC channels, each on a connection of its own, until every one of ``pids`` has accepted one.

    Waits for each process to listen first (a replica's REST is ready once its
    first process is); then, as the kernel hands each new connection to one of
    the processes on the port (``SO_REUSEPORT``), channels are opened until
    each has one.
    """
    port = replica.grpc_port
    deadline = time.monotonic() + 180
    while not all(sockets(pid, port, LISTEN) for pid in pids):
        assert time.monotonic() < deadline, f"not every process of {pids} listens: {replica.log.read_text()}"
        time.sleep(0.2)
    channels: list[grpc.Channel] = []
    while not all(sockets(pid, port, ESTABLISHED) for pid in pids):
        assert len(channels) < limit, f"{limit} connections did not reach every process of {pids}"
        # A local subchannel pool: channels in one process would otherwise share one connection.
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(channel).result(timeout=10)
        channels.append(channel)
        time.sleep(0.05)  # the server's accept() follows the client's connect
    return channels
