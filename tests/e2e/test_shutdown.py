"""SIGTERM drains: calls in flight finish, new calls are refused, the process exits cleanly."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import cast

import grpc
import orjson
import pytest
import requests

from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import decision_pb2_grpc as pb_grpc
from strata.engine.schema import parse_datetime
from strata.transport.convert import to_timestamp
from tests.conftest import ROOT
from tests.fakes import AS_OF

SLOW_SECONDS = 1.5


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
