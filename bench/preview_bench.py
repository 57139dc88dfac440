"""Impact preview over a million users in Postgres: the SQL path next to the Python loop, one run.

    .venv/bin/python bench/preview_bench.py                      # throwaway cluster, loads 1,000,000 users
    .venv/bin/python bench/preview_bench.py --url postgresql://...  # a database of yours (reused if loaded)
    STRATA_BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/preview_bench.py --only segment.rfm
    .venv/bin/python bench/preview_bench.py --all                   # lifecycle.duolingo too

The population is ``strata.store.population.generate_population(users, seed=1,
as_of=2026-03-10T12:00Z)`` written through ``ProfileStore.import_profiles``
(COPY). Without ``--url`` (or ``STRATA_BENCH_DATABASE_URL``) a throwaway
cluster is started with ``scripts/pg_throwaway.sh`` and loaded, which takes
about two minutes; a database given by URL is loaded when empty and reused
when it already holds exactly ``--users`` profiles (``--reload`` empties it
first), so repeated runs skip the load.

For each ruleset (lifecycle.journey and the RFM model, the heaviest lifecycle and the
segment model; ``--all`` adds lifecycle.duolingo, ``--only`` picks), a candidate that
changes a threshold is previewed against the default file as the baseline:

* SQL: ``run_preview`` as the CLI runs it (both classifications and the
  transition matrix in one query, read-only snapshot); the median of
  ``--repeats`` runs, after one warm-up run.
* Python loop: ``run_preview(force_python=True)``: the same users streamed from
  the same table in batches, each parsed and decided by the engine under both
  versions. This is what a preview costs without the SQL compiler, and what it
  falls back to.

Both must return the same matrix (every cell, count and sample id), or the run
aborts: a fast wrong answer measures nothing. The table gives absolute times
and the ratio; the targets are 3 s per SQL preview and 10x the Python loop.
Wall-clock time on a shared machine swings with its load, so the table also
gives CPU time: the Postgres backend's for the SQL preview (read from /proc,
when the database runs on this machine; a preview runs in that one process)
and this process's for the Python loop. The default run (load included) takes
about six minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from strata.engine import CompiledRuleset
from strata.preview import PreviewResult, Version, run_preview
from strata.rulefiles.loader import compile_rule_file, load_paths, parse_rule_file
from strata.store import ProfileStore, make_engine, migrate
from strata.store.models import PROFILES
from strata.store.population import generate_population

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
SEED = 1
TARGET_S = 3.0
TARGET_RATIO = 10.0

# The candidate of each ruleset: its default file with one edit an ops person might make.
CANDIDATES: dict[str, tuple[str, str]] = {
    "lifecycle.journey": ("churn_days: 30 ", "churn_days: 45 "),
    "lifecycle.duolingo": (
        "when: active_today and active_d1_d6",
        "when: active_today and active_days_7d >= 3",
    ),
    "segment.rfm": ("thresholds: [7, 30, 90, 180]", "thresholds: [14, 30, 60, 120]"),
}
DEFAULT_RULESETS = ["lifecycle.journey", "segment.rfm"]


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A Postgres cluster for this run only (``scripts/pg_throwaway.sh``), stopped and deleted afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="strata-bench-pg-"))
    directory.chmod(0o755)
    script = ROOT / "scripts" / "pg_throwaway.sh"
    started = subprocess.run([script, "start", directory], capture_output=True, text=True, check=True)
    url = started.stdout.strip().split("=", 1)[1]
    try:
        yield url
    finally:
        subprocess.run([script, "stop", directory], capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


class BackendClock:
    """CPU seconds of the Postgres backend behind an engine's one pooled connection.

    None when that backend is not a process of this machine (a remote server).
    """

    def __init__(self, engine: sa.Engine) -> None:
        with engine.connect() as connection:
            pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        self._proc = Path(f"/proc/{pid}")

    def seconds(self) -> float | None:
        try:
            if (self._proc / "comm").read_text().strip() != "postgres":
                return None
            fields = (self._proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def timed(
    engine: sa.Engine, clock: BackendClock, *args: Any, **options: Any
) -> tuple[PreviewResult, float | None]:
    """A preview and the CPU time its backend spent on it."""
    before = clock.seconds()
    result = run_preview(engine, *args, **options)
    after = clock.seconds()
    return result, None if before is None or after is None else after - before


def load(url: str, users: int, reload: bool, console: Console) -> sa.Engine:
    """The database holding the population: reused if it already has ``users`` profiles.

    The engine has one connection, so every preview runs in the backend ``BackendClock`` reads.
    """
    migrate(url)
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        present = connection.execute(sa.select(sa.func.count()).select_from(PROFILES)).scalar_one()
    if present == users and not reload:
        console.print(f"reusing the {present:,} profiles already in the database")
        return engine
    if present and not reload:
        raise SystemExit(
            f"the database holds {present:,} profiles, not {users:,}: pass --reload to replace them"
        )
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE profiles"))
    schema = load_paths([RULES])[0].schema
    started = time.perf_counter()
    console.print(f"generating and loading {users:,} users (COPY) ...")
    ProfileStore(engine, schema).import_profiles(generate_population(users, SEED, AS_OF))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE profiles"))
    console.print(f"loaded in {time.perf_counter() - started:.0f} s")
    return engine


def candidate_of(name: str, baseline: CompiledRuleset[Any]) -> CompiledRuleset[Any]:
    old, new = CANDIDATES[name]
    text = (RULES / f"{name}.yaml").read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"ABORT: {name} no longer contains {old!r}; update CANDIDATES")
    # The file's own test cases describe the baseline's thresholds: the candidate drops them.
    return compile_rule_file(parse_rule_file(text.replace(old, new).split("\ntests:")[0]), baseline.schema)


def comparable(result: PreviewResult) -> dict[str, Any]:
    return {key: value for key, value in result.to_dict().items() if key not in ("method", "elapsed_s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=os.environ.get("STRATA_BENCH_DATABASE_URL"), help="a Postgres database"
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="population size (1,000,000)")
    parser.add_argument("--reload", action="store_true", help="replace the profiles in --url's database")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed SQL previews; the median is reported (3)"
    )
    parser.add_argument("--only", action="append", choices=list(CANDIDATES), help="this ruleset (repeatable)")
    parser.add_argument("--all", action="store_true", help="every ruleset with a candidate")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.url:
        return run(args.url, args, console)
    with throwaway_cluster() as url:
        return run(url, args, console)


def run(url: str, args: argparse.Namespace, console: Console) -> int:
    engine = load(url, args.users, args.reload, console)
    clock = BackendClock(engine)
    rules = load_paths([RULES])[0].compiled
    table = Table(
        title=f"impact preview over {args.users:,} users in Postgres (as of {AS_OF:%Y-%m-%d %H:%M} UTC)"
    )
    for column in (
        "ruleset",
        "candidate change",
        "users moved",
        "SQL preview s",
        "Python loop s",
        "Python / SQL",
        "SQL CPU s",
        "Python CPU s",
        "CPU ratio",
    ):
        table.add_column(column, justify="left" if column in ("ruleset", "candidate change") else "right")
    verdicts = []
    for name in list(CANDIDATES) if args.all else args.only or DEFAULT_RULESETS:
        baseline = Version("default file", rules[name])
        candidate = Version("candidate", candidate_of(name, rules[name]))
        run_preview(engine, candidate, baseline, AS_OF)  # warm-up: caches, plans
        timed_runs = [timed(engine, clock, candidate, baseline, AS_OF) for _ in range(args.repeats)]
        sql_s = statistics.median(result.elapsed_s for result, _ in timed_runs)
        cpu_runs = [cpu for _, cpu in timed_runs if cpu is not None]
        sql_cpu = statistics.median(cpu_runs) if cpu_runs else None
        console.print(
            f"{name}: SQL previews {', '.join(f'{r.elapsed_s:.2f}' for r, _ in timed_runs)} s; Python loop ..."
        )
        started_cpu = time.process_time()
        python = run_preview(engine, candidate, baseline, AS_OF, force_python=True, timeout_s=3600)
        python_cpu = time.process_time() - started_cpu
        first = timed_runs[0][0]
        if first.method != "sql" or comparable(first) != comparable(python):
            console.print(f"[bold red]ABORT: {name}: the SQL and Python previews differ[/]")
            return 1
        ratio = python.elapsed_s / sql_s
        verdicts.append(sql_s <= TARGET_S and ratio >= TARGET_RATIO)
        old, new = CANDIDATES[name]
        table.add_row(
            name,
            f"{old.strip()} -> {new.strip()}",
            f"{python.changed:,}",
            f"{sql_s:.2f}",
            f"{python.elapsed_s:.1f}",
            f"{ratio:.0f}x",
            "-" if sql_cpu is None else f"{sql_cpu:.2f}",
            f"{python_cpu:.1f}",
            "-" if sql_cpu is None else f"{python_cpu / sql_cpu:.0f}x",
        )
    console.print(table)
    with engine.connect() as connection:
        server = connection.execute(sa.text("SHOW server_version")).scalar_one()
    load_average = " ".join(f"{value:.2f}" for value in os.getloadavg())
    console.print(
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
        f"Postgres {server}, load average {load_average}; targets: SQL <= {TARGET_S:g} s and "
        f">= {TARGET_RATIO:g}x the Python loop: {'met' if all(verdicts) else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
