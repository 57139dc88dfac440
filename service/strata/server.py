"""Both transports in one process, for development and small deployments.

``strata serve`` runs this. Production REST runs under gunicorn instead
(``gunicorn 'strata.transport.wsgi:app'``), beside a gRPC process; the
shutdown contract is the same: on SIGTERM, health turns NOT_SERVING, no new
calls are taken, calls in flight finish (up to ``grace`` seconds), then the
process exits.

Readiness is one answer on both transports: ``/readyz`` and the gRPC health
service say SERVING only while ``ready()`` holds (rulesets are loaded) and
no stop has begun; the gRPC status follows ``ready()`` within a tenth of a
second, so a replica that started without its database turns SERVING when
it has rules to serve.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from grpc_health.v1 import health
from werkzeug.serving import BaseWSGIServer, make_server

from strata.config import DEFAULT_GRPC_WORKERS
from strata.console import Console
from strata.transport import grpc_server
from strata.transport.http import create_app
from strata.transport.operations import Operations


@dataclass(frozen=True)
class Bound:
    """The addresses a started server listens on."""

    host: str
    grpc_port: int
    http_port: int


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(
    operations: Operations,
    *,
    host: str = "127.0.0.1",
    grpc_port: int = 50051,
    http_port: int | None = 8080,
    grace: float = 10.0,
    grpc_workers: int = DEFAULT_GRPC_WORKERS,
    ready: Callable[[], bool] | None = None,
    on_started: Callable[[Bound], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    console: Console | None = None,
) -> None:
    """Serve gRPC and REST until SIGTERM or SIGINT (or ``stop`` is set), then drain.

    Ports may be 0 (tests): ``on_started`` receives the ones bound. With
    ``http_port=None`` only gRPC is served (REST runs under gunicorn). Signal
    handlers are installed only when called from the main thread. ``console``
    adds the ops console to the REST app (``/console``).
    ``on_stopping`` runs once the stop begins, before the drain (to stop a
    REST child process at the same time).
    """
    stop = stop or threading.Event()
    is_ready = ready or operations.has_rulesets

    def serving() -> bool:
        return not stop.is_set() and is_ready()

    health_servicer = health.HealthServicer()
    server, bound_grpc = grpc_server.create_server(
        operations,
        grpc_address(host, grpc_port),
        health_servicer=health_servicer,
        max_workers=grpc_workers,
    )
    status = grpc_server.set_serving(health_servicer, serving(), previous=True)
    http: BaseWSGIServer | None = None
    if http_port is not None:
        http = make_server(
            host, http_port, create_app(operations, ready=serving, console=console), threaded=True
        )
        # Non-daemon request threads are joined by server_close(): that is the HTTP drain.
        http.daemon_threads = False  # type: ignore[attr-defined]
        http.block_on_close = True  # type: ignore[attr-defined]

    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    server.start()
    http_thread = None
    if http is not None:
        http_thread = threading.Thread(target=http.serve_forever, name="strata-http", daemon=True)
        http_thread.start()
    if on_started:
        on_started(Bound(host, bound_grpc, http.server_port if http else 0))
    try:
        while not stop.wait(0.1):
            status = grpc_server.set_serving(health_servicer, serving(), status)
    finally:
        stop.set()  # /readyz says not ready from here on
        if on_stopping is not None:
            on_stopping()
        # gRPC refuses new calls at once; HTTP's accept loop notices within its 0.5 s poll.
        drained = grpc_server.stop(server, grace, health_servicer)
        if http is not None:
            http.shutdown()  # no new HTTP requests
        drained.wait()  # in-flight RPCs have finished
        if http is not None and http_thread is not None:
            http.server_close()  # waits for in-flight HTTP requests
            http_thread.join(grace)
