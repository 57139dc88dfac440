"""Service-level benchmarks of issue 9: Strata over gRPC and REST against bare transport floors.

One run, bounded in time (about four minutes with the defaults), every server in its own process
and the load generator here, on the same machine, over loopback:

1. gRPC: a bare grpcio sync echo server (a generic handler returning the request bytes, a thread
   pool of Strata's size) in one process (the issue's floor) and in ``--grpc-processes`` processes on
   one port, and Strata's server (``python -m strata serve --demo --rest gunicorn --grpc-processes
   N``, the default rules), each loaded by a grpc.aio client with 64 calls in flight over 16
   connections (the kernel spreads connections, not calls, over processes). Strata answers
   ``Decide`` with an inline profile and all four decisions, with the whole explanation
   (``explain`` FULL, the default) and without it (NONE).
2. REST: a bare Flask JSON echo under gunicorn (2 sync workers, the settings ``strata serve
   --rest gunicorn`` uses) and Strata's ``POST /v1/decide`` under that gunicorn, 16 connections
   from an asyncio HTTP/1.1 client, the same two requests.
3. With a Postgres server (``--postgres``, or ``STRATA_BENCH_POSTGRES_URL`` or
   ``STRATA_TEST_POSTGRES_URL``), Strata serves from a new database on it and a third gRPC run
   asks ``Decide`` for a stored user (``--demo`` stores it) instead of an inline profile.
4. h2load (nghttp2's C load generator; Debian's ``nghttp2-client``), when installed: the gRPC runs
   of 1 and 3 again, the same calls in gRPC's framing. The grpc.aio client spends about as much CPU
   per call as the echo server, taken from the same two cores; h2load a tenth of it, so its runs
   show what each server does with the machine (``--no-h2load`` leaves them out).
5. Batch: ``DecideBatch`` with 500 inline profiles per call, one call at a time, at both
   explanation levels, and the same batches through ``DecisionService.decide_batch`` in process,
   split into their parts (proto to requests, decisions, results to the response's bytes).

The load runs alternate, ``--rounds`` times, so that a change in the machine's load hits floor and
Strata alike. ``--chart FILE.png`` draws Strata against each floor; ``--profile`` adds a cProfile
of the in-process batch path, ``--py-spy`` a py-spy of the server during gRPC Decide.

    .venv/bin/python bench/service_bench.py [--duration 8] [--warmup 2] [--chart docs/service-bench.png]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import itertools
import json
import os
import pstats
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
GRPC_IN_FLIGHT = 64
GRPC_CONNECTIONS = 16
GRPC_PROCESSES = 2  # Strata's gRPC processes (strata serve --grpc-processes): this machine's cores
REST_CONNECTIONS = 16
BATCH_SIZE = 500
KINDS = ["lifecycle", "segment", "incentive", "intervention"]
EVENT = {"type": "sign_in", "count": 1}
FULL, NONE = "EXPLAIN_FULL", "EXPLAIN_NONE"  # DecideRequest.explain: all of the explanation, or none
STORED_USER = "demo-current"  # stored by `strata serve --demo`


# floors ----------------------------------------------------------------------


def run_grpc_echo(port: int) -> None:
    """A bare grpcio sync server: every method returns the request bytes."""
    import grpc

    from strata.config import DEFAULT_GRPC_WORKERS  # as many threads as `strata serve`

    class Echo(grpc.GenericRpcHandler):
        def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(lambda request, context: request)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=DEFAULT_GRPC_WORKERS))
    server.add_generic_rpc_handlers((Echo(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def run_grpc_echoes(port: int, processes: int) -> None:
    """``processes`` echo servers on one port (``SO_REUSEPORT``), as Strata's with ``--grpc-processes``."""
    if processes == 1:
        run_grpc_echo(port)
        return
    import multiprocessing
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit through atexit, which ends the daemons
    context = multiprocessing.get_context("spawn")  # no grpc object crosses a fork
    children = [context.Process(target=run_grpc_echo, args=(port,), daemon=True) for _ in range(processes)]
    for child in children:
        child.start()
    for child in children:
        child.join()


def create_echo_app() -> Any:
    """The REST floor: a Flask app that parses the JSON body and returns it."""
    from flask import Flask, jsonify, request

    app = Flask("echo")

    @app.post("/v1/decide")
    def echo() -> Any:
        return jsonify(request.get_json())

    return app


# inputs ----------------------------------------------------------------------


def profiles(count: int) -> list[dict[str, Any]]:
    """Inline profiles: ``strata serve --demo``'s users, cycled, each with its own id."""
    from strata.commands.serve import demo_profiles

    base = demo_profiles(dt.datetime.now(dt.UTC).date())
    return [{**base[i % len(base)], "user_id": f"bench-{i}"} for i in range(count)]


def decide_body(profile: dict[str, Any] | None, explain: str = FULL, user_id: str = "") -> dict[str, Any]:
    """A Decide of every kind: with ``profile`` inline, or for ``user_id``'s stored profile."""
    body: dict[str, Any] = {"rulesets": KINDS, "event": EVENT, "explain": explain}
    if profile is not None:
        body["profile"] = profile
    if user_id:
        body["user_id"] = user_id
    return body


def decide_bytes(body: dict[str, Any]) -> bytes:
    from google.protobuf import json_format

    from strata.api.strata.v1 import decision_pb2 as pb

    return json_format.ParseDict(body, pb.DecideRequest()).SerializeToString()


def batch_message(count: int, explain: str = FULL) -> Any:
    from google.protobuf import json_format

    from strata.api.strata.v1 import decision_pb2 as pb

    body = {"requests": [decide_body(profile, explain) for profile in profiles(count)]}
    return json_format.ParseDict(body, pb.DecideBatchRequest())


# processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: {process.args}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s: {process.args}")


@contextlib.contextmanager
def started(
    command: list[str], ports: list[int], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, once its ports accept connections and a second more (gunicorn's workers boot)."""
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    try:
        for port in ports:
            wait_for_port(port, process)
        time.sleep(1.0)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gunicorn_command(port: int, app: str) -> list[str]:
    # The same options as strata.commands.serve._start_gunicorn (2 sync workers).
    return [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "10", "--log-level", "warning", "--pythonpath", str(ROOT / "bench"), app,
    ]  # fmt: skip


def merge(results: list[Result]) -> Result:
    """Rounds of one run as one: requests over all measured seconds, latencies pooled."""
    return Result(
        results[0].name,
        sum(r.requests for r in results),
        sum(r.errors for r in results),
        sum(r.seconds for r in results),
        [latency for r in results for latency in r.latencies],
        sum(r.server_cpu for r in results),
    )


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


IDLE_CPU: dict[int, float] = {}
"""CPU seconds per second each server uses with no request (watcher, metrics, gunicorn's arbiter)."""


def measure_idle(pids: list[int], quiet: float = 0.03, limit: float = 40.0) -> None:
    """Each server's idle CPU rate: the lowest over one-second windows, sampled until every server
    has had a quiet one (below ``quiet`` cores) or ``limit`` seconds passed. gunicorn's workers load
    the rules after the port opens, which on a busy machine takes them ten seconds or more."""
    lowest = {pid: float("inf") for pid in pids}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and max(lowest.values()) >= quiet:
        before = {pid: server_cpu(pid) for pid in pids}
        time.sleep(1.0)
        for pid in pids:
            lowest[pid] = min(lowest[pid], server_cpu(pid) - before[pid])
    IDLE_CPU.update(lowest)


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its live descendants (gunicorn's workers).

    What a server spends per request, whatever else the machine runs: on a shared machine,
    requests/s says how much CPU the server got, this says how much it needed.
    """
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    tree, total = {pid}, 0.0
    for _ in range(4):  # the server, gunicorn, its workers: a few levels at most
        tree |= {child for child, (parent, _) in stats.items() if parent in tree}
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


# load generators -------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0  # CPU seconds the server's processes used in the measured seconds

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return max(self.server_cpu, 1e-9) / max(self.requests, 1)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _drive(
    name: str, call: Callable[[], Any], concurrency: int, warmup: float, duration: float, pid: int
) -> Result:
    """``concurrency`` loops calling ``call`` for warmup + duration s; only the last duration counts,
    and the CPU the server ``pid`` used meanwhile."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + duration
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    cpu: list[float] = []
    loop.call_at(measure_from, lambda: cpu.append(server_cpu(pid)))
    loop.call_at(stop_at, lambda: cpu.append(server_cpu(pid)))
    idle = IDLE_CPU.get(pid, 0.0) * duration  # what the server's background threads use anyway

    async def worker() -> None:
        while True:
            began = loop.time()
            if began >= stop_at:
                return
            try:
                await call()
                ok = True
            except Exception:
                ok = False
            ended = loop.time()
            if began >= measure_from and ended <= stop_at:
                if ok:
                    counts["ok"] += 1
                    latencies.append(ended - began)
                else:
                    counts["errors"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    while len(cpu) < 2:  # every worker may have returned just before the last sample
        await asyncio.sleep(0.01)
    return Result(name, counts["ok"], counts["errors"], duration, latencies, max(0.0, cpu[1] - cpu[0] - idle))


async def grpc_load(
    name: str, port: int, method: str, payload: bytes, warmup: float, duration: float, pid: int
) -> Result:
    """``GRPC_IN_FLIGHT`` calls over ``GRPC_CONNECTIONS`` connections, taken in turn."""
    import grpc

    # A local subchannel pool each: channels in one process would otherwise share one connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(GRPC_CONNECTIONS)
    ]
    try:
        stubs = [channel.unary_unary(method) for channel in channels]
        for stub in stubs:
            await stub(payload, timeout=10)  # fails loudly if the server does not answer
        turns = itertools.cycle(stubs)

        async def call() -> None:
            await next(turns)(payload, timeout=10)

        return await _drive(name, call, GRPC_IN_FLIGHT, warmup, duration, pid)
    finally:
        for channel in channels:
            await channel.close()


H2LOAD = "h2load: "  # the prefix of the runs nghttp2's h2load drives


async def h2load_grpc(
    name: str, port: int, method: str, payload: bytes, warmup: float, duration: float, pid: int, tmp: str
) -> Result:
    """The same calls as ``grpc_load`` (``GRPC_IN_FLIGHT`` over ``GRPC_CONNECTIONS`` connections), sent by
    h2load, nghttp2's load generator in C, as plain HTTP/2 POSTs in gRPC's framing.

    On two cores the grpc.aio client spends about as much CPU per call as the echo server: it
    takes that from the servers it measures. h2load spends a tenth of it, so its runs show what
    each server can do with the cores. h2load knows nothing of gRPC statuses (an error is an HTTP
    200 without a message): a first call through grpcio must succeed, and the answers' bytes say
    how many were answers (each is as long as that first one; an error has none).
    """
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = await channel.unary_unary(method)(payload, timeout=10)
    frame_bytes = 5 + len(answer)  # gRPC's frame: a compressed flag, a length, the message
    body, log = Path(tmp) / "h2load-body", Path(tmp) / "h2load-log"
    body.write_bytes(b"\x00" + len(payload).to_bytes(4, "big") + payload)

    def command(seconds: float, *log_to: str) -> list[str]:
        return [
            "h2load", "-D", f"{seconds * 1000:.0f}ms", "-c", str(GRPC_CONNECTIONS), "-m", str(GRPC_IN_FLIGHT // GRPC_CONNECTIONS),
            "-d", str(body), *log_to, "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://127.0.0.1:{port}{method}",
        ]  # fmt: skip

    async def run(seconds: float, *log_to: str) -> str:
        process = await asyncio.create_subprocess_exec(*command(seconds, *log_to), stdout=subprocess.PIPE)
        out = (await process.communicate())[0].decode()
        if process.returncode != 0:
            raise SystemExit(f"h2load failed ({process.returncode}): {out[-500:]}")
        return out

    await run(warmup)  # its own run: h2load's --warm-up-time counts its bytes in the measured run's
    cpu = server_cpu(pid)
    log.unlink(missing_ok=True)  # h2load appends to it
    out = await run(duration, "--log-file", str(log))
    cpu = server_cpu(pid) - cpu - IDLE_CPU.get(pid, 0.0) * duration
    data = re.search(r"\((\d+)\) data", out)
    if data is None:
        raise SystemExit(f"h2load said no data received: {out[-500:]}")
    rows = [line.split("\t") for line in log.read_text().splitlines()]  # start µs, status, µs taken
    latencies = [int(taken) / 1e6 for _, status, taken in rows if status == "200"]
    answered = min(len(latencies), round(int(data.group(1)) / frame_bytes))
    return Result(name, answered, len(rows) - answered, duration, latencies, max(0.0, cpu))


async def rest_load(name: str, port: int, body: bytes, warmup: float, duration: float, pid: int) -> Result:
    """HTTP/1.1 POSTs from asyncio streams: gunicorn's sync workers close each connection."""
    request = (
        b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def call() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            response = await reader.read()
        finally:
            writer.close()
        if not response.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(response[:200])

    await call()
    return await _drive(name, call, REST_CONNECTIONS, warmup, duration, pid)


# batch -----------------------------------------------------------------------


def grpc_batch(port: int, message: Any, duration: float, pid: int) -> tuple[float, int, float]:
    """Sequential DecideBatch calls for ``duration`` s (after one warm-up call): seconds per call,
    calls, and the server's (``pid``) CPU seconds per call."""
    import grpc

    from strata.api.strata.v1 import decision_pb2 as pb

    payload = message.SerializeToString()
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as channel:
        stub = channel.unary_unary("/strata.v1.DecisionService/DecideBatch")
        response = pb.DecideBatchResponse.FromString(stub(payload, timeout=60))
        failed = [r for r in response.results if r.HasField("error")]
        if failed:
            raise SystemExit(f"DecideBatch: {len(failed)} errors, first: {failed[0].error}")
        timings = []
        stop_at = time.monotonic() + duration
        cpu = server_cpu(pid)
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            stub(payload, timeout=60)
            timings.append(time.perf_counter() - began)
        cpu = server_cpu(pid) - cpu - IDLE_CPU.get(pid, 0.0) * (time.monotonic() - stop_at + duration)
    return statistics.median(timings), len(timings), cpu / len(timings)


def in_process_batch(message: Any, repeats: int, profile: bool) -> dict[str, float]:
    """CPU seconds of each part of the batch path in this thread, medians of ``repeats`` (thread time:
    grpcio's own threads in this process, left by the load runs, do not count)."""
    from strata.config import RequestLimits
    from strata.decisions import DecisionService
    from strata.rulefiles.loader import load_paths
    from strata.transport import convert, convert_wire
    from strata.transport.limits import RequestChecker
    from strata.wiring import prepare_heap_for_serving

    rules, _ = load_paths([RULES_DIR])
    service = DecisionService.from_files(rules)
    checker = RequestChecker(RequestLimits())
    prepare_heap_for_serving()  # as a serving process does once loaded
    parts: dict[str, list[float]] = {"parse": [], "decide": [], "encode": []}
    payload = message.SerializeToString()

    def one_batch() -> list[float]:
        t0 = time.thread_time()
        parsed = type(message).FromString(payload)
        checker.check_request(parsed)  # as Operations.wire_handler does: the limits, then the conversion
        requests = convert.batch_request(parsed, checker)
        t1 = time.thread_time()
        results = service.decide_batch(requests)
        t2 = time.thread_time()
        convert_wire.batch_response(results, [item.explain for item in parsed.requests])  # as gRPC sends it
        t3 = time.thread_time()
        failed = [result for result in results if isinstance(result, Exception)]
        if failed:
            raise SystemExit(f"in-process batch failed: {failed[0]}")
        return [t1 - t0, t2 - t1, t3 - t2]

    for _ in range(repeats + 1):
        for key, value in zip(parts, one_batch(), strict=True):
            parts[key].append(value)
    if profile:
        profiler = cProfile.Profile(time.thread_time)  # CPU time: waiting for a core is not counted
        profiler.enable()
        one_batch()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    return {key: statistics.median(values[1:]) for key, values in parts.items()}


def py_spy(pid: int, warmup: float, duration: float, tmp: str) -> subprocess.Popen[bytes]:
    """py-spy (if installed next to this Python) sampling the server during the measured seconds."""
    command = [
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
        "--rate", "200", "--gil", "--subprocesses", "--duration", str(int(duration)), "--nonblocking", "--output",
        str(Path(tmp) / "py-spy.txt"),
    ]  # fmt: skip
    return subprocess.Popen(
        ["sh", "-c", f"sleep {warmup} && exec {' '.join(command)}"], stdout=subprocess.DEVNULL
    )


def print_py_spy(path: Path, top: int = 25) -> None:
    """Functions by the share of the server's samples they are on the stack (inclusive) and on top (self)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [re.sub(r" \((?:.*/)?([^/:)]*)[^)]*\)$", r" (\1)", frame) for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    print(
        f"\npy-spy --gil, Strata's process during gRPC Decide: {total} samples of the thread holding the GIL"
    )
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"  {title}:")
        for frame, count in sorted(counts.items(), key=lambda item: -item[1])[:top]:
            print(f"    {count / max(total, 1):6.1%}  {frame}")


@dataclass
class Batch:
    explain: str
    per_call: float | None  # seconds per DecideBatch over gRPC, wall
    calls: int
    server_cpu: float | None  # the server's CPU seconds per DecideBatch over gRPC
    parts: dict[str, float]  # CPU seconds per batch in process, by part

    @property
    def in_process(self) -> float:
        return sum(self.parts.values())


def print_batch(n: int, batches: list[Batch]) -> None:
    k = len(KINDS)
    rows = []
    for batch in batches:
        if batch.per_call is not None and batch.server_cpu is not None:
            rows.append(
                [f"{batch.explain}: gRPC DecideBatch, one call at a time (wall)", f"{batch.per_call * 1000:.0f}",
                 f"{n / batch.per_call:,.0f}", f"{n * k / batch.per_call:,.0f}"]
            )  # fmt: skip
            rows.append(
                [f"{batch.explain}: gRPC DecideBatch, the server's CPU", f"{batch.server_cpu * 1000:.0f}",
                 f"{n / batch.server_cpu:,.0f}", f"{n * k / batch.server_cpu:,.0f}"]
            )  # fmt: skip
        rows.append(
            [f"{batch.explain}: in process, all parts (CPU)", f"{batch.in_process * 1000:.0f}",
             f"{n / batch.in_process:,.0f}", f"{n * k / batch.in_process:,.0f}"]
        )  # fmt: skip
        for key, value in batch.parts.items():
            rows.append([f"  {key}", f"{value * 1000:.1f}", f"{n / value:,.0f}", f"{n * k / value:,.0f}"])
    print(f"DecideBatch of {n} inline profiles x {k} decisions ({','.join(KINDS)})")
    print("target: 50,000 user decisions/s on one core")
    print(table(rows, ["path", "ms per batch", "users/s", "decisions/s"]))


def chart(path: Path, by_name: dict[str, Result], batches: list[Batch], n: int, processes: int) -> None:
    """A PNG of Strata against each floor: requests/s as a share of the echo's, and batch decisions/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [3, 2]})
    names = [name for name in by_name if "echo" not in name]
    shares = [by_name[name].rate / by_name[floor_of(name)].rate * 100 for name in names]
    bars = left.barh(names, shares, color=["#4c72b0" if "Postgres" not in n else "#8172b2" for n in names])
    left.bar_label(
        bars,
        [f"{share:.0f}% ({by_name[name].rate:,.0f}/s)" for name, share in zip(names, shares, strict=True)],
    )
    cpu_shares = [
        by_name[floor_of(name)].cpu_per_request / by_name[name].cpu_per_request * 100 for name in names
    ]
    left.scatter(
        cpu_shares, names, marker="D", color="black", zorder=3, label="echo's CPU / Strata's, per request"
    )
    against_echoes = [
        (by_name[name].rate / by_name[echoes].rate * 100, name)
        for name in names
        if (echoes := echoes_of(name, processes)) in by_name
    ]
    if against_echoes:
        left.scatter(
            *zip(*against_echoes, strict=True), marker="|", s=200, color="#dd8452", zorder=3,
            label=f"req/s as % of the {ECHOES.format(processes)}'s",
        )  # fmt: skip
    left.axvline(100, color="black", linewidth=1)
    left.axvline(70, color="#c44e52", linestyle="--", linewidth=1, label="target 70% (Postgres: 50%)")
    left.axvline(50, color="#c44e52", linestyle=":", linewidth=1)
    left.set_xlim(0, max(130, *shares, *cpu_shares, *(share for share, _ in against_echoes)) + 10)
    left.invert_yaxis()
    left.set_xlabel("bars: requests/s as % of the bare echo server's, same run", fontsize=9)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7)
    labels, values = [], []
    for batch in batches:
        if batch.server_cpu is not None:
            labels.append(f"gRPC, {batch.explain.removeprefix('EXPLAIN_').lower()} (server CPU)")
            values.append(n * len(KINDS) / batch.server_cpu)
        labels.append(f"in process, {batch.explain.removeprefix('EXPLAIN_').lower()}")
        values.append(n * len(KINDS) / batch.in_process)
    bars = right.barh(labels, values, color="#55a868")
    right.bar_label(bars, [f"{value:,.0f}" for value in values])
    right.axvline(50_000, color="#c44e52", linestyle="--", linewidth=1, label="target 50,000/s")
    right.set_xlim(0, max(60_000, max(values) * 1.3))
    right.invert_yaxis()
    right.set_xlabel(f"DecideBatch ({n} users x {len(KINDS)}): decisions per CPU s", fontsize=8)
    right.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:.0f}k")
    right.legend(loc="upper right", fontsize=7)
    fig.suptitle(
        "Strata against the transport floors (bench/service_bench.py, 2 shared cores: ratios, not speeds)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart: {path}")


def round_ratios(results: list[Result], names: list[str], rounds: int) -> dict[str, list[float]]:
    """Each Strata run's requests/s over its floor's in the same round: how steady the ratio was."""
    ratios: dict[str, list[float]] = {}
    for round_ in range(rounds):
        mine = {r.name: r for r in results[round_ * len(names) : (round_ + 1) * len(names)]}
        for name in names:
            if "echo" not in name:
                ratios.setdefault(name, []).append(mine[name].rate / mine[floor_of(name)].rate)
    return ratios


def floor_of(name: str) -> str:
    """The issue's floor: the echo in one process, under the same load generator."""
    load = H2LOAD if name.startswith(H2LOAD) else ""
    return load + ("gRPC echo" if name.removeprefix(load).startswith("gRPC") else "REST echo")


def echoes_of(name: str, processes: int) -> str | None:
    """A gRPC run's second floor: the echo in as many processes as Strata's gRPC server."""
    floor = floor_of(name)
    return floor.replace("gRPC echo", ECHOES.format(processes)) if "gRPC" in floor else None


ECHOES = "gRPC echo in {} processes"


# main ------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def postgres_database(url: str | None) -> Iterator[str | None]:
    """A new database on the Postgres server at ``url`` for the run (dropped after), or None."""
    if not url:
        yield None
        return
    import uuid

    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    admin = make_url(url).set(drivername="postgresql+psycopg", database="postgres")
    name = f"strata_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per load run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="inline profiles per DecideBatch")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process batch path")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the load runs, alternated")
    parser.add_argument("--py-spy", action="store_true", help="py-spy the server during gRPC Decide")
    parser.add_argument(
        "--rulesets", default=",".join(KINDS), help="what each Decide asks for (default: the four kinds)"
    )
    parser.add_argument("--batch-only", action="store_true", help="only the in-process batch path")
    parser.add_argument(
        "--no-h2load", dest="h2load", action="store_false", help="leave out the gRPC runs driven by h2load"
    )
    parser.add_argument("--chart", type=Path, help="write a PNG of Strata against the floors here")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("STRATA_BENCH_POSTGRES_URL") or os.environ.get("STRATA_TEST_POSTGRES_URL"),
        help="a Postgres server to serve from (a new database, dropped after), for the stored-profile run; "
        "default: STRATA_BENCH_POSTGRES_URL or STRATA_TEST_POSTGRES_URL; without one, SQLite and no such run",
    )
    parser.add_argument(
        "--grpc-processes",
        type=int,
        default=GRPC_PROCESSES,
        help=f"Strata's gRPC processes, and a second echo floor's (default: {GRPC_PROCESSES}; 1: no second echo)",
    )
    parser.add_argument("--serve-grpc-echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_grpc_echo:
        run_grpc_echoes(args.serve_grpc_echo, args.grpc_processes)
        return

    KINDS[:] = args.rulesets.split(",")
    if args.batch_only:
        batches = [
            Batch(e, None, 0, None, in_process_batch(batch_message(args.batch, e), 5, args.profile))
            for e in (FULL, NONE)
        ]
        print_batch(args.batch, batches)
        return
    began = time.monotonic()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)", flush=True)
    one = profiles(1)[0]
    body_json = json.dumps(decide_body(one)).encode()
    body_json_none = json.dumps(decide_body(one, NONE)).encode()
    payload, payload_none = decide_bytes(decide_body(one)), decide_bytes(decide_body(one, NONE))
    payload_stored = decide_bytes(decide_body(None, user_id=STORED_USER))
    results: list[Result] = []
    w, d = args.warmup, args.duration

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        database = servers.enter_context(postgres_database(args.postgres))
        # All servers stay up for the whole run, so that rounds alternate floor and Strata.
        echo_port, echoes_port, rest_echo_port, grpc_port, http_port = (free_port() for _ in range(5))
        n = args.grpc_processes

        def echo_command(port: int, processes: int) -> list[str]:
            return [
                sys.executable,
                __file__,
                "--serve-grpc-echo",
                str(port),
                "--grpc-processes",
                str(processes),
            ]

        grpc_echo = servers.enter_context(started(echo_command(echo_port, 1), [echo_port]))
        grpc_echoes = (
            servers.enter_context(started(echo_command(echoes_port, n), [echoes_port])) if n > 1 else None
        )
        rest_echo = servers.enter_context(
            started(gunicorn_command(rest_echo_port, "service_bench:create_echo_app()"), [rest_echo_port])
        )
        env = {
            "STRATA_DATABASE_URL": database or f"sqlite:///{tmp}/strata.db",
            "STRATA_RULES_DIR": str(RULES_DIR),
        }
        command = [
            sys.executable, "-m", "strata", "serve", "--demo", "--rest", "gunicorn",
            "--grpc-port", str(grpc_port), "--http-port", str(http_port), "--grpc-processes", str(n),
        ]  # fmt: skip
        strata = servers.enter_context(started(command, [grpc_port, http_port], env))
        decide = "/strata.v1.DecisionService/Decide"

        def rest_run(name: str, port: int, body: bytes, pid: int) -> Callable[[], Any]:
            return lambda: rest_load(name, port, body, w, d, pid)

        measure_idle([grpc_echo.pid, rest_echo.pid, strata.pid, *([grpc_echoes.pid] if grpc_echoes else [])])
        echo_method, none = "/bench.Echo/Echo", "explain none"
        grpc_calls = [
            ("gRPC echo", echo_port, echo_method, payload, grpc_echo.pid)
        ]  # name, port, method, body, pid
        if grpc_echoes is not None:
            grpc_calls.append((ECHOES.format(n), echoes_port, echo_method, payload, grpc_echoes.pid))
        grpc_calls += [
            ("gRPC Decide", grpc_port, decide, payload, strata.pid),
            (f"gRPC Decide, {none}", grpc_port, decide, payload_none, strata.pid),
        ]
        if database:
            grpc_calls.append(
                ("gRPC Decide, stored profile (Postgres)", grpc_port, decide, payload_stored, strata.pid)
            )
        runs: list[tuple[str, Callable[[], Any]]] = [
            (name, partial(grpc_load, name, port, method, body, w, d, pid))
            for name, port, method, body, pid in grpc_calls
        ]
        runs += [
            ("REST echo", rest_run("REST echo", rest_echo_port, body_json, rest_echo.pid)),
            ("REST Decide", rest_run("REST Decide", http_port, body_json, strata.pid)),
            (f"REST Decide, {none}", rest_run(f"REST Decide, {none}", http_port, body_json_none, strata.pid)),
        ]
        if args.h2load and shutil.which("h2load"):
            runs += [
                (H2LOAD + name, partial(h2load_grpc, H2LOAD + name, port, method, body, w, d, pid, tmp))
                for name, port, method, body, pid in grpc_calls
            ]
        elif args.h2load:
            print("h2load not found (Debian: apt-get install nghttp2-client): its runs are left out")
        for round_ in range(args.rounds):
            for name, run in runs:
                spy = None
                if args.py_spy and round_ == 0 and name == "gRPC Decide":
                    spy = py_spy(strata.pid, w, d, tmp)  # and its serving processes
                result = asyncio.run(run())
                print(
                    f"  round {round_ + 1}, {name}: {result.rate:,.0f} req/s, p99 {result.percentile(99):.1f} ms",
                    flush=True,
                )
                results.append(result)
                if spy is not None:
                    spy.wait()
                    print_py_spy(Path(tmp) / "py-spy.txt")
        batches = [
            Batch(explain, *grpc_batch(grpc_port, batch_message(args.batch, explain), d, strata.pid), {})
            for explain in (FULL, NONE)
        ]
    for batch in batches:
        batch.parts = in_process_batch(batch_message(args.batch, batch.explain), 5, args.profile)
    ratios = round_ratios(results, [name for name, _ in runs], args.rounds)
    results = [merge([r for r in results if r.name == name]) for name, _ in runs]

    print()
    rows = []
    for r in results:
        rows.append([
            r.name, f"{r.rate:,.0f}", f"{r.percentile(50):.1f}", f"{r.percentile(99):.1f}", str(r.errors),
            f"{r.cpu_per_request * 1e6:,.0f}",
        ])  # fmt: skip
    print(table(rows, ["run", "req/s", "p50 ms", "p99 ms", "errors", "server CPU µs/request"]))
    print()
    by_name = {r.name: r for r in results}
    rows = []
    for r in results:
        if "echo" in r.name:
            continue
        echo = by_name[floor_of(r.name)]
        target = 0.5 if "stored" in r.name else 0.7
        rate, p99 = r.rate / echo.rate, r.percentile(99) / echo.percentile(99)
        each = ratios[r.name]
        echoes = by_name.get(echoes_of(r.name, n) or "")
        rows.append([
            r.name, f"{rate:.0%}", f"{min(each):.0%}-{max(each):.0%}",
            f">= {target:.0%}: " + ("met" if rate >= target else "missed"),
            f"{p99:.2f}x", "met" if p99 <= 2 else "missed", f"{echo.cpu_per_request / r.cpu_per_request:.0%}",
            f"{r.rate / echoes.rate:.0%}, {r.percentile(99) / echoes.percentile(99):.2f}x" if echoes else "",
        ])  # fmt: skip
    header = [
        "Strata vs its echo floor", "req/s ratio", "each round", "target", "p99 ratio", "<= 2x",
        "echo CPU / Strata CPU per request", f"gRPC: req/s, p99 vs the echo in {n} processes",
    ]  # fmt: skip
    print(f"Strata serves gRPC in {n} process(es); the floor is the echo in one (the issue's)")
    print(table(rows, header))
    print()
    print_batch(args.batch, batches)
    if args.chart:
        chart(args.chart, by_name, batches, args.batch, n)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}; {time.monotonic() - began:.0f} s in all")


if __name__ == "__main__":
    main()
