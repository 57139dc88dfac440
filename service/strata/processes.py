"""Serving processes: one, or several sharing the gRPC port, for more than one core of Python.

A process answers gRPC calls under one GIL, which grpcio's own Python server
machinery and Strata's handlers share, so it tops out near one core whatever
the machine has (docs/benchmarks.md, "The gRPC server"). grpcio's answer for
CPU-bound Python servers is several processes listening on one port with
``SO_REUSEPORT`` (on by default on Linux): the kernel spreads *connections*
among them, so a client with one HTTP/2 connection is served by one process
and the gain needs several connections (several clients, or a load balancer's).

``strata serve --grpc-processes N`` (``STRATA_GRPC_PROCESSES``), N > 1, runs
``serve_processes``: the command's process serves nothing itself; it starts N
processes with ``spawn`` (each a fresh interpreter: no gRPC object, thread or
database connection crosses a fork) and each is what ``strata serve`` is with
one process, through the same ``serve_services``: its own database pool, the
registry's watcher (so an activation reaches every process within a second,
as it reaches every replica), decision log writer and shadow runner, gunicorn's
REST workers being built the same way. The first process also serves the
built-in REST app (unless REST runs under gunicorn). Their metrics go to the
Prometheus multiprocess directory, as gunicorn's workers' do, so ``/metrics``
on any process counts all of them.

Stopping: SIGTERM (or SIGINT) to the command's process is passed to each
serving process, which drains as a single one does: health NOT_SERVING, calls
in flight finish within the grace period, the decision log and shadow runs
written out. A serving process that exits on its own is reported and stops the
service (exit status 1), the others draining: a replica runs with all of its
processes or not at all, and whatever runs it (an orchestrator, systemd)
restarts it. Restarting processes here instead would hide lost capacity and
loop on a process that cannot start.
A command's process killed outright (SIGKILL) takes its serving processes
with it: each asked Linux for a SIGTERM when its parent dies, and drains.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from strata import metrics
from strata.config import Settings
from strata.server import Bound, serve
from strata.wiring import Services, build_services, prepare_heap_for_serving

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


@dataclass(frozen=True)
class Listen:
    """Where a serving process listens and how long it drains; ``http_port`` None: no built-in REST."""

    host: str
    grpc_port: int
    http_port: int | None
    grace: float


def serve_services(
    services: Services,
    settings: Settings,
    listen: Listen,
    *,
    on_started: Callable[[Bound], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """Serve ``services`` until SIGTERM or SIGINT, then drain and write out what their queues hold.

    One serving process, the only one or one of several (see ``serve``).
    """
    services.watcher.start()
    if metrics.multiprocess_dir():  # another process may answer /metrics: publish the engine's counts
        metrics.start_engine_sync()
    prepare_heap_for_serving()
    try:
        serve(
            services.operations(),
            host=listen.host,
            grpc_port=listen.grpc_port,
            http_port=listen.http_port,
            grpc_workers=settings.grpc_workers,
            grace=listen.grace,
            on_started=on_started,
            on_stopping=on_stopping,
            console=services.console(settings.console_secret),
        )
    finally:
        services.watcher.stop()
        services.close(listen.grace)  # the decision log and shadow runs still queued


def _serve_one(settings: Settings, listen: Listen, started: Connection, parent: int) -> None:
    """A spawned serving process: its own services over the migrated, seeded database; once it
    serves, its bound ports go to ``started``. It stops with ``parent``, the command's process."""
    if not _stop_with_parent(parent):
        return
    serve_services(build_services(settings), settings, listen, on_started=started.send)


def _stop_with_parent(parent: int) -> bool:
    """Ask Linux for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``); False if it already has.

    A parent killed outright (SIGKILL, the OOM killer) cannot pass a SIGTERM on: without this its
    serving processes would keep the port, answering as an orphaned half of a replica that its
    orchestrator believes gone. With the signal they drain as on any stop. The parent may die
    before the request is made, which the check of ``getppid`` after it catches. Elsewhere than
    Linux there is no such request: there, the parent's SIGTERM (the normal stop) is the only one.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("could not ask to stop with the parent: errno %d", ctypes.get_errno())
    return os.getppid() == parent


def serve_processes(
    settings: Settings,
    listen: Listen,
    count: int,
    *,
    on_started: Callable[[Bound], None],
    on_stopping: Callable[[], None] | None = None,
) -> int:
    """Run ``count`` serving processes on one gRPC port until SIGTERM or SIGINT here, or until one
    exits on its own; the exit status: 0 when stopped by a signal and every process drained.

    The first process binds ``listen.grpc_port`` (0 picks one) and the others the port it bound;
    ``on_started`` receives the first's ports once all serve. ``on_stopping`` runs once the stop
    begins (to stop gunicorn at the same time). The database must be migrated and the registry
    seeded already: the processes start together.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []

    def spawn(where: Listen) -> tuple[BaseProcess, Connection]:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve_one,
            args=(settings, where, send, os.getpid()),
            name=f"strata-serve-{len(processes) + 1}",
        )
        process.start()
        send.close()  # the child's copy is the only writer: its exit ends the pipe
        processes.append(process)
        return process, receive

    def started(process: BaseProcess, receive: Connection) -> Bound | None:
        """Its bound ports once it serves; None if it exited first, or a stop came."""
        while not stop.is_set():
            if receive.poll(0.1):
                try:
                    bound: Bound = receive.recv()
                    return bound
                except EOFError:  # it exited before serving
                    process.join(5)
                    return None
        return None

    # With a port given all start at once; with 0, the others bind the port the first one got.
    first = spawn(listen)
    later = replace(listen, http_port=None)
    others = [spawn(later) for _ in range(count - 1)] if listen.grpc_port else []
    bound = started(*first)
    if bound is not None and not others:
        others = [spawn(replace(later, grpc_port=bound.grpc_port)) for _ in range(count - 1)]
    if bound is not None and all(started(*other) is not None for other in others):
        on_started(bound)
        while not stop.is_set() and not wait([p.sentinel for p in processes], timeout=0.1):
            pass
    status = 0
    if not stop.is_set():  # a process exited on its own, serving or starting
        # One closed its pipe before serving and may still be exiting (a stalled shutdown): none found.
        ended = next((p for p in processes if wait([p.sentinel], timeout=0)), None)
        if ended is None:
            log.error("a serving process of %d stopped before serving: stopping the service", count)
        else:
            ended.join(5)  # its sentinel closes as it exits, a moment before it can be reaped
            log.error(
                "serving process %d of %d (pid %s) exited with status %s: stopping the service",
                processes.index(ended) + 1,
                count,
                ended.pid,
                ended.exitcode,
            )
        status = 1
    if on_stopping is not None:
        on_stopping()
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: each drains on its own, at the same time
    # A process drains its calls within the grace period, then its queues within another.
    deadline = time.monotonic() + 2 * listen.grace + 5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("serving process pid %s did not stop in time: killed", process.pid)
            process.kill()
            process.join()
        if process.exitcode not in (0, -signal.SIGTERM):  # SIGTERM before its handler: still starting
            status = 1
    return status
