"""Prometheus metrics: what the service counts, and how a scrape reads them.

The metric objects live here, in the process's default registry, so any
module counts with one call and no wiring. Counting is on the request path,
so it stays cheap: ``count_decision`` keeps each label set's child, since
``labels()`` costs several times an increment.

Exposition (``GET /metrics`` on REST, ``strata serve --metrics-port``):

- one process (``strata serve``, REST in a thread): the default registry,
  which holds what both transports counted;
- REST under gunicorn: every worker writes its values to
  ``PROMETHEUS_MULTIPROC_DIR`` (``strata serve --rest gunicorn`` makes one
  for its workers) and ``/metrics`` on any worker adds them all up. The gRPC
  process serves its own at ``--metrics-port``; give it the same
  ``PROMETHEUS_MULTIPROC_DIR`` instead and REST's ``/metrics`` covers it too.
- several gRPC processes (``strata serve --grpc-processes``): they and
  gunicorn's workers share one such directory (made for them unless set), and
  ``/metrics`` or ``--metrics-port`` adds them all up.

The engine is pure, so it keeps plain counters of its own (expressions left
to the interpreter when rules load, compiled evaluations rerun by the
interpreter); ``sync_engine_counts`` adds what they gained since the last
call to the Prometheus counters, at every scrape and, under gunicorn, every
second from a background thread (a worker is not the one scraped).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from strata.engine import compiler

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

DECISIONS = Counter(
    "strata_decisions",
    "Decisions made, by ruleset, the version that answered and why that version",
    ["ruleset", "version", "why"],
)
ERRORS = Counter("strata_errors", "Calls that failed, by error code", ["code"])
LATENCY = Histogram(
    "strata_request_latency_seconds",
    "Time to answer a call once its message is parsed, by RPC (decisions are the DecisionService RPCs)",
    ["rpc"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOG_WRITTEN = Counter("strata_decision_log_written", "Decision log entries written")
LOG_DROPPED = Counter("strata_decision_log_dropped", "Decision log entries dropped because the log was full")
SHADOW_AGREED = Counter(
    "strata_shadow_agreements",
    "Shadow runs whose candidate decided the same as the answering version",
    ["ruleset", "candidate"],
)
SHADOW_DIFFERED = Counter(
    "strata_shadow_differences",
    "Shadow runs whose candidate decided otherwise (or failed); each is in the decision log",
    ["ruleset", "candidate"],
)
SHADOW_DROPPED = Counter("strata_shadow_dropped", "Shadow runs dropped because their queue was full")
INTERPRETED = Counter(
    "strata_rules_interpreted_expressions",
    "Rule expressions left to rule-engine's interpreter when rules were compiled (not compiled to Python)",
)
RERUNS = Counter(
    "strata_rules_reruns", "Evaluations of compiled expressions that failed and were rerun by the interpreter"
)

DecisionKey = tuple[str, int | None, str | None]
"""A decision's labels: the ruleset, its version (None: rule files), why that version."""
_decision_children: dict[DecisionKey, Any] = {}
_engine_seen = {"interpreted": 0, "reruns": 0}
_engine_lock = threading.Lock()


def count_decision(ruleset: str, version: int | None, why: str | None, amount: int = 1) -> None:
    """``amount`` more decisions by ``ruleset@version`` for reason ``why``."""
    key = (ruleset, version, why)
    child = _decision_children.get(key)
    if child is None:
        child = DECISIONS.labels(ruleset, "" if version is None else str(version), why or "")
        _decision_children[key] = child
    child.inc(amount)


class DecisionTally:
    """Decisions counted in memory, then added to the counter once per label set (``add``).

    A ``DecideBatch`` makes thousands of decisions over a handful of label sets, and each
    increment of the counter takes its lock (about 0.5 µs; 2-3 µs under several serving
    processes, where it also writes the process's metrics file). Called as ``count_decision``.
    """

    def __init__(self) -> None:
        self.counts: dict[DecisionKey, int] = {}

    def __call__(self, ruleset: str, version: int | None, why: str | None) -> None:
        key = (ruleset, version, why)
        self.counts[key] = self.counts.get(key, 0) + 1

    def add(self) -> None:
        """Add what was counted to the counter, and start again from zero."""
        counts, self.counts = self.counts, {}
        for (ruleset, version, why), amount in counts.items():
            count_decision(ruleset, version, why, amount)


def sync_engine_counts() -> None:
    """Add what the engine's own counters gained since the last call."""
    with _engine_lock:
        for name, metric in (("interpreted", INTERPRETED), ("reruns", RERUNS)):
            now = compiler.counts[name]
            if now > _engine_seen[name]:
                metric.inc(now - _engine_seen[name])
                _engine_seen[name] = now


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


def serve(port: int, host: str) -> None:
    """The metrics ``exposition`` gives, on a port of their own (``strata serve --metrics-port``)."""
    start_http_server(port, host, registry=_registry())
    start_engine_sync()


def start_engine_sync(every: float = 1.0) -> None:
    """Publish the engine's counts every ``every`` seconds, for scrapes that do not pass here."""

    def loop() -> None:
        while True:
            time.sleep(every)
            sync_engine_counts()

    threading.Thread(target=loop, name="strata-metrics-sync", daemon=True).start()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type: this process's, or all processes'."""
    sync_engine_counts()
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def _registry() -> CollectorRegistry:
    """This process's registry, or one adding up every process's files in the multiprocess directory."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
