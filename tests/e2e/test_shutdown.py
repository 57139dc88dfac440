"""SIGTERM drains: calls in flight finish, new calls are refused, the process exits cleanly, and the
decision log holds every decision made before the signal."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import orjson
import pytest
import requests
from google.protobuf import json_format
from strata_client import StrataClient

from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import decision_pb2_grpc as pb_grpc
from strata.config import Settings
from strata.engine.schema import parse_datetime
from strata.shadows import Shadow
from strata.transport.convert import to_timestamp
from strata.wiring import build_services
from tests.conftest import ROOT, RULES_DIR
from tests.fakes import AS_OF
from tests.replica import channels_to_every_process, serving_processes, start_replica

SLOW_SECONDS = 1.5
DUOLINGO = "lifecycle.duolingo"
DORMANT_IS_INACTIVE = (
    (RULES_DIR / f"{DUOLINGO}.yaml").read_text().replace("stage: dormant", "stage: inactive")
)
DORMANT = {"user_id": "u-dormant", "first_active_date": "2025-06-01", "activity_dates": ["2026-01-02"]}


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.serve_slow", str(SLOW_SECONDS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        yield process, orjson.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_sigterm_drains_calls_in_flight(server: tuple[subprocess.Popen[str], dict[str, int]]) -> None:
    process, ports = server
    channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}")
    stub = pb_grpc.DecisionServiceStub(channel)
    request = pb.ClassifyLifecycleRequest(user_id="u-new")
    assert stub.ClassifyLifecycle(request, timeout=10).stage  # warm: connected and serving
    slow = pb.ClassifyLifecycleRequest(user_id="u-current", as_of=to_timestamp(parse_datetime(AS_OF)))
    url = f"http://127.0.0.1:{ports['http']}/v1/lifecycle:classify"
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        in_flight_grpc = pool.submit(stub.ClassifyLifecycle, slow, timeout=20)
        in_flight_http = pool.submit(
            requests.post, url, json={"user_id": "u-current", "as_of": AS_OF}, timeout=20
        )
        time.sleep(0.5)  # both are now inside the slow profile load
        process.send_signal(signal.SIGTERM)
        time.sleep(0.4)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ClassifyLifecycle(request, timeout=5)
        assert cast(grpc.Call, refused.value).code() == grpc.StatusCode.UNAVAILABLE
        assert in_flight_grpc.result().stage == "current"
        response = in_flight_http.result()
        assert response.status_code == 200 and response.json()["stage"] == "current"
    channel.close()
    assert process.wait(15) == 0


def _read_until_closed(fd: int, timeout: float) -> bytes:
    """Everything written to the pipe ``fd`` reads until its last writer has closed it."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    raise AssertionError(f"the decision log was still open after {timeout} s")


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_writes_out_the_decisions_still_queued_for_the_log(tmp_path: Path, processes: int) -> None:
    """The decision log is a FIFO that the test does not read until a while after SIGTERM, so the
    server's log writer is stuck on a full pipe while the calls are answered and while the server
    stops: their entries are still queued in it. Each must be written before it exits (within
    ``--grace``), and so must the difference the shadow candidate found for each call. With two
    gRPC processes (``--grpc-processes 2``), calls reach each of them, each with its own log
    writer."""
    fifo = tmp_path / "decisions.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # first, so that the server's open() goes on
    with contextlib.suppress(AttributeError, OSError):  # Linux: a one-page pipe fills with a few entries
        fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)
    database = f"sqlite:///{tmp_path / 'strata.db'}"
    registry = build_services(
        Settings(database_url=database, rules_dir=RULES_DIR), run_migrations=True
    ).registry
    registry.publish(DORMANT_IS_INACTIVE, "test")
    registry.set_shadow(DUOLINGO, Shadow(2, 1.0, "all"), registry.head(DUOLINGO).revision, "test")
    replica = start_replica(
        database,
        tmp_path / "serve.log",
        "--grace",
        "20",
        "--grpc-processes",
        str(processes),
        env={"STRATA_DECISION_LOG": str(fifo)},
    )
    rulesets = ["lifecycle", "segment", "intervention"]
    sent: list[str] = []
    try:
        replica.wait_ready(timeout=180)
        rest = StrataClient.rest(replica.url, timeout=10, retries=0)
        grpc_ = StrataClient.grpc(f"127.0.0.1:{replica.grpc_port}", timeout=10, retries=0)
        with rest, grpc_:
            for index in range(40):
                for name, client in (("rest", rest), ("grpc", grpc_)):
                    sent.append(f"{name}-{index}")
                    client.decide(
                        profile=DORMANT, rulesets=rulesets, as_of=parse_datetime(AS_OF), request_id=sent[-1]
                    )
        pids = serving_processes(replica) if processes > 1 else [replica.process.pid]
        assert len(pids) == processes
        request = json_format.ParseDict(
            {"profile": DORMANT, "rulesets": rulesets, "as_of": AS_OF}, pb.DecideRequest()
        )
        for index, channel in enumerate(channels_to_every_process(replica, pids)):
            with channel:
                for call in range(5):
                    sent.append(f"connection-{index}-{call}")
                    pb_grpc.DecisionServiceStub(channel).Decide(
                        request, timeout=10, metadata=(("x-request-id", sent[-1]),)
                    )
        replica.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):  # time a server that drops them to exit
            replica.process.wait(2)
        written = _read_until_closed(reader, timeout=60)
        assert replica.process.wait(30) == 0, replica.log.read_text()
    finally:
        os.close(reader)
        if replica.process.poll() is None:
            replica.process.kill()
            replica.process.wait(10)
    entries = [orjson.loads(line) for line in written.splitlines()]
    logged = collections.Counter(entry["request_id"] for entry in entries if "shadow" not in entry)
    assert logged == {request_id: len(rulesets) for request_id in sent}
    differences = [entry for entry in entries if "shadow" in entry]
    assert sorted(entry["request_id"] for entry in differences) == sorted(sent)
    assert {(entry["result"]["stage"], entry["shadow"]["result"]["stage"]) for entry in differences} == {
        ("dormant", "inactive")
    }
