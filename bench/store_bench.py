"""What loading one stored profile by user id costs (issue 9): the store's read against SQLAlchemy's.

The service's stored-profile ``Decide`` loads the profile through
``GuardedStore.get`` with a deadline, as here. Two reads, in alternating
rounds, on Postgres (a new database on ``--postgres``, dropped after) and on
a SQLite file:

- **SQLAlchemy Connection**: the store's read before issue 9's work, a Core
  ``select`` executed on an engine connection (on Postgres: the pool's ping,
  ``BEGIN``, the budget's ``SET LOCAL statement_timeout``, the ``SELECT``,
  the ``ROLLBACK`` of the connection's return);
- **store**: ``ProfileStore.get`` as shipped (on Postgres ``store.lookup``:
  one message with the budget and the prepared read's ``EXECUTE``).

Per load: the calling thread's CPU time (``time.thread_time``, what a server
thread spends), the wall time and, when Postgres runs on this machine, the
CPU time of the database's server processes (``/proc/<pid>/schedstat``: on
the same cores, it is as much the service's cost); medians of the rounds.

    .venv/bin/python bench/store_bench.py [--loads 1000] [--rounds 15] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service_bench import STORED_USER, postgres_database
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from strata.commands.serve import demo_profiles
from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine, migrate
from strata.store.guarded import GuardedStore
from strata.store.models import PROFILES

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 2.0  # STRATA_DATABASE_TIMEOUT's default
DEADLINE_S = 30.0


class SqlAlchemyRead(ProfileStore):
    """The store with the read it had before: a statement built and executed on an engine connection."""

    def get(self, user_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as connection:
            data = connection.execute(select(PROFILES.c.data).where(PROFILES.c.user_id == user_id)).scalar()
        return None if data is None else self._in_schema_order(data)


def reads(url: str) -> dict[str, Callable[[], object]]:
    """The two reads of the demo's stored user on a migrated database at ``url`` with the demo users."""
    migrate(url)
    engine = make_engine(url)
    schema = load_schema(ROOT / "rules" / "profile.yaml")
    store = ProfileStore(engine, schema)
    for profile in demo_profiles(dt.datetime.now(dt.UTC).date()):
        store.upsert(profile)
    variants = {"SQLAlchemy Connection": SqlAlchemyRead(engine, schema), "store": store}
    guarded = {name: GuardedStore(variant, TIMEOUT_S) for name, variant in variants.items()}
    expected = store.get(STORED_USER)
    assert expected is not None and all(g.get(STORED_USER) == expected for g in guarded.values())
    return {name: loader(g) for name, g in guarded.items()}


def server_cpu(url: str) -> Callable[[], float] | None:
    """A clock of the CPU seconds used by ``url``'s server processes serving it, None if not on this machine.

    Postgres serves each connection from a process of its own; the clock sums
    the ones connected to the database, found anew on each call (not counted
    in the call's own figures: the caller reads it outside its timed loop).
    """
    monitor = create_engine(url, poolclass=NullPool)
    with monitor.connect() as connection:
        if not Path(f"/proc/{connection.execute(text('SELECT pg_backend_pid()')).scalar()}").exists():
            return None
    return lambda: _server_seconds(monitor)


def _server_seconds(monitor: Engine) -> float:
    with monitor.connect() as connection:
        pids = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        return sum(int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) for pid in pids) / 1e9


def loader(store: GuardedStore) -> Callable[[], object]:
    """One load of the stored user with a deadline, as a ``Decide`` for it makes."""
    return lambda: store.get(STORED_USER, time.monotonic() + DEADLINE_S)


def measure(
    backend: str,
    variants: dict[str, Callable[[], object]],
    loads: int,
    rounds: int,
    server: Callable[[], float] | None = None,
) -> None:
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    server_us: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(rounds + 1):  # the first round warms up (connections, caches, prepared plans)
        for name, read in variants.items():
            server_started = server() if server else 0.0
            started, started_wall = time.thread_time(), time.perf_counter()
            for _ in range(loads):
                read()
            ended, ended_wall = time.thread_time(), time.perf_counter()
            if round_:
                cpu[name].append((ended - started) / loads * 1e6)
                wall[name].append((ended_wall - started_wall) / loads * 1e6)
                if server:
                    server_us[name].append((server() - server_started) / loads * 1e6)
    first = next(iter(variants))
    for name in variants:
        ratio = statistics.median(cpu[name]) / statistics.median(cpu[first])
        on_server = f"  server CPU {statistics.median(server_us[name]):5.0f} µs/load" if server else ""
        print(
            f"{backend:8} {name:22} CPU {statistics.median(cpu[name]):6.0f} µs/load"
            f" ({min(cpu[name]):.0f}-{max(cpu[name]):.0f}, {ratio:.2f}x)"
            f"  wall {statistics.median(wall[name]):6.0f} µs/load{on_server}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=1000, help="loads per variant and round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("STRATA_BENCH_POSTGRES_URL") or os.environ.get("STRATA_TEST_POSTGRES_URL"),
        help="a Postgres server (a new database, dropped after); default: STRATA_BENCH_POSTGRES_URL "
        "or STRATA_TEST_POSTGRES_URL; without one, SQLite only",
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with postgres_database(args.postgres) as url:
        if url:
            measure("Postgres", reads(url), args.loads, args.rounds, server_cpu(url))
    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite", reads(f"sqlite:///{tmp}/strata.db"), args.loads, args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
