"""``strata serve``: both transports, configured from ``STRATA_*``.

One process serves gRPC (and REST in a thread, or REST runs in a gunicorn
child); ``--grpc-processes N`` runs N serving processes on the one gRPC port
instead (see ``strata.processes``).

``--demo`` is what ``make run`` uses on a fresh machine: it migrates the
database, stores a few example users (``demo-*``), prints one call for
each transport to copy, and makes the console's session secret and a
publisher token to sign in with (see ``strata.console.demo``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from strata import metrics
from strata.config import Settings
from strata.console.demo import demo_secret, demo_token
from strata.errors import StrataError
from strata.processes import Listen, serve_processes, serve_services
from strata.profiles import ProfileStore
from strata.server import Bound
from strata.wiring import build_services


def demo_profiles(today: dt.date) -> list[dict[str, Any]]:
    """A handful of users in different lifecycle stages, relative to ``today``."""

    def days_ago(n: int) -> str:
        return (today - dt.timedelta(days=n)).isoformat()

    return [
        {"user_id": "demo-new", "first_active_date": days_ago(0), "activity_dates": [days_ago(0)]},
        {
            "user_id": "demo-current",
            "registered_at": days_ago(200) + "T09:00:00Z",
            "first_active_date": days_ago(200),
            "activity_dates": [days_ago(2), days_ago(1), days_ago(0)],
            "orders_365d": 12,
            "spend_365d": 1450.0,
            "last_order_at": days_ago(5) + "T18:30:00Z",
            "points": 420,
            "level": 4,
            "streak_days": 3,
            "last_checkin_date": days_ago(1),
        },
        {
            "user_id": "demo-at-risk",
            "first_active_date": days_ago(90),
            "activity_dates": [days_ago(40), days_ago(3)],
            "orders_365d": 2,
            "spend_365d": 80.0,
            "last_order_at": days_ago(60) + "T12:00:00Z",
        },
        {"user_id": "demo-dormant", "first_active_date": days_ago(400), "activity_dates": [days_ago(75)]},
    ]


def seed_demo(store: ProfileStore) -> list[str]:
    profiles = demo_profiles(dt.datetime.now(dt.UTC).date())
    for profile in profiles:
        store.upsert(profile)
    return [profile["user_id"] for profile in profiles]


def _announce(
    bound: Bound, users: list[str], http_port: int, rest: str, token_file: Path | None, processes: int
) -> None:
    host = "localhost" if bound.host in ("0.0.0.0", "::", "127.0.0.1") else bound.host
    user = users[1] if len(users) > 1 else "USER_ID"
    body = f'{{"user_id": "{user}"}}'
    click.echo(f"REST  http://{host}:{http_port}  ({rest}; OpenAPI: /openapi.json, health: /healthz /readyz)")
    click.echo(f"gRPC  {host}:{bound.grpc_port}  (health and reflection on; {processes} process(es))")
    if token_file is not None:
        click.echo(f"Console  http://{host}:{http_port}/console  (sign in with the token in {token_file})")
    click.echo(f"  curl -s http://{host}:{http_port}/v1/lifecycle:classify -d '{body}'")
    rpc = "strata.v1.DecisionService/ClassifyLifecycle"
    click.echo(f"  grpcurl -plaintext -d '{body}' {host}:{bound.grpc_port} {rpc}")
    click.echo("SIGTERM or Ctrl-C drains in-flight calls and stops.", err=True)


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="interface to bind (0.0.0.0 in a container)"
)
@click.option("--grpc-port", type=int, help="default: STRATA_GRPC_PORT or 50051")
@click.option("--http-port", type=int, help="default: STRATA_HTTP_PORT or 8080")
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="rule files that seed an empty registry; default: STRATA_RULES_DIR",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="serve this process's Prometheus metrics on a port of their own; default: STRATA_METRICS_PORT",
)
@click.option("--migrate", is_flag=True, help="migrate the database before serving")
@click.option("--demo", is_flag=True, help="migrate, store the demo-* users and print example calls")
@click.option(
    "--grace", type=float, default=10.0, show_default=True, help="seconds to drain calls on SIGTERM"
)
@click.option(
    "--rest",
    type=click.Choice(["gunicorn", "builtin"]),
    default="builtin",
    show_default=True,
    help="gunicorn: REST in a gunicorn child (2 sync workers); builtin: a thread of the (first) gRPC process",
)
@click.option(
    "--grpc-processes",
    type=click.IntRange(1),
    help="processes serving gRPC on the one port, each with its own services; "
    "default: STRATA_GRPC_PROCESSES or 1",
)
def serve_command(
    host: str,
    grpc_port: int | None,
    http_port: int | None,
    rules_dir: Path | None,
    migrate: bool,
    demo: bool,
    grace: float,
    rest: str,
    metrics_port: int | None,
    grpc_processes: int | None,
) -> None:
    """Serve decisions over gRPC and REST.

    The rulesets served are the registry's active versions, reloaded within a
    second of an activation on any replica (and in every serving process).
    """
    settings = Settings.from_env()
    if rules_dir is not None:
        settings = dataclasses.replace(settings, rules_dir=rules_dir)
    if grpc_processes is not None:
        settings = dataclasses.replace(settings, grpc_processes=grpc_processes)
    if demo and not settings.console_secret:
        settings = dataclasses.replace(settings, console_secret=demo_secret())
    try:
        services = build_services(settings, run_migrations=migrate or demo)
        users = seed_demo(services.store) if demo else []
        token_file = demo_token(services.tokens) if demo else None
    except StrataError as exc:
        click.echo(f"error ({exc.code}): {exc}", err=True)
        sys.exit(2)
    port = settings.http_port if http_port is None else http_port
    several = settings.grpc_processes > 1
    metrics_dir = None
    if (rest == "gunicorn" or several) and not metrics.multiprocess_dir():
        metrics_dir = tempfile.mkdtemp(prefix="strata-metrics-")
        # The serving processes started below count there too (and /metrics, --metrics-port add up).
        if several:
            os.environ[metrics.MULTIPROCESS_DIR] = metrics_dir
    gunicorn = _start_gunicorn(host, port, grace, settings, metrics_dir) if rest == "gunicorn" else None
    serve_metrics_on = settings.metrics_port if metrics_port is None else metrics_port
    if serve_metrics_on:  # 0: no metrics port (--metrics-port 0 overrides STRATA_METRICS_PORT)
        metrics.serve(serve_metrics_on, host)
    listen = Listen(
        host,
        settings.grpc_port if grpc_port is None else grpc_port,
        None if gunicorn else port,
        grace,
    )
    status = 0
    try:
        # SIGTERM: gunicorn stops accepting and drains its workers while gRPC drains
        on_stopping = gunicorn.terminate if gunicorn is not None else None

        def announce(bound: Bound) -> None:
            _announce(bound, users, bound.http_port or port, rest, token_file, settings.grpc_processes)

        if several:
            # This process only starts them: what it built to migrate, seed and make the demo is done.
            services.close(grace)
            services.engine.dispose()
            services.previews.engine.dispose()  # a replica's, when previews read one (else the same)
            status = serve_processes(
                settings, listen, settings.grpc_processes, on_started=announce, on_stopping=on_stopping
            )
        else:
            serve_services(services, settings, listen, on_started=announce, on_stopping=on_stopping)
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(grace + 5)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if status:
        sys.exit(status)


def _start_gunicorn(
    host: str, port: int, grace: float, settings: Settings, metrics_dir: str | None
) -> subprocess.Popen[bytes]:
    """REST under gunicorn, as in production, over the same database and rules.

    Its workers share ``metrics_dir`` (unless one is set already), so that
    ``/metrics`` on any of them counts all of them.
    """
    env = {
        **os.environ,
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_RULES_DIR": str(settings.rules_dir),
        "STRATA_CONSOLE_SECRET": settings.console_secret,
    }
    if metrics_dir is not None:
        env[metrics.MULTIPROCESS_DIR] = metrics_dir
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"{host}:{port}",
        "--graceful-timeout", str(int(grace)), "--log-level", "warning", "strata.transport.wsgi:app",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


serve_command.name = "serve"
