"""Shadow runs, off the request path: a bounded queue and one worker thread.

The request thread only decides whether the user is sampled and puts the run
on the queue (``put_nowait``); a full queue drops the run and counts it, so
shadows never add a wait to a call. The worker judges the profile with the
candidate version, compares the outcome with the answer the caller got,
counts the agreement or difference (Prometheus), and writes each difference
to the decision log with both results. A candidate that fails counts as a
difference, with its error in place of a result.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from strata import metrics
from strata.decisionlog import DecisionSink, drain, log_entry
from strata.engine.decision import Decision
from strata.engine.facts import Clock
from strata.engine.ruleset import decide_failing_closed
from strata.errors import StrataError
from strata.rulesets import Served
from strata.shadows import outcome

DEFAULT_CAPACITY = 1000
log = logging.getLogger(__name__)


class ShadowRun(NamedTuple):
    """One decision to repeat with the candidate: its inputs, and what the caller was answered.

    A named tuple: it is built on the request path, where a frozen dataclass costs several times more.
    """

    candidate: Served
    answered: Served
    decision: Decision
    profile: Any
    clock: Clock
    event: Mapping[str, Any] | None
    user_id: str
    request_id: str
    at: dt.datetime


class ShadowRunner:
    """Runs shadow candidates on a background thread; ``submit`` never blocks."""

    def __init__(self, log: DecisionSink | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.log = log
        self._queue: queue.Queue[ShadowRun | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._work, name="strata-shadows", daemon=True)
        self._thread.start()

    def submit(self, run: ShadowRun) -> bool:
        """Queue ``run``; False (and one more drop counted) when the queue is full."""
        try:
            self._queue.put_nowait(run)
        except queue.Full:
            metrics.SHADOW_DROPPED.inc()
            return False
        return True

    def _work(self) -> None:
        while True:
            run = self._queue.get()
            try:
                if run is None:
                    return
                self._judge(run)
            except Exception:  # a bug here must not stop every later shadow run
                log.exception("a shadow run failed")
            finally:
                self._queue.task_done()

    def _judge(self, run: ShadowRun) -> None:
        compiled = run.candidate.compiled
        answered = run.decision.to_dict()
        started = time.perf_counter()
        try:
            decision = decide_failing_closed(compiled, compiled.facts(run.profile, run.clock), run.event)
            result: dict[str, Any] = {"result": decision.to_dict()}
        except StrataError as exc:
            result = {"error": {"code": exc.code, "message": exc.message}}
        elapsed = time.perf_counter() - started
        labels = (compiled.name, str(run.candidate.version))
        if "result" in result and outcome(result["result"]) == outcome(answered):
            metrics.SHADOW_AGREED.labels(*labels).inc()
            return
        metrics.SHADOW_DIFFERED.labels(*labels).inc()
        if self.log is not None:
            shadow = {"version": run.candidate.version, **result, "latency_ms": round(elapsed * 1000, 3)}
            self.log.record(
                log_entry(run.at, run.request_id, run.user_id, run.answered, answered, shadow=shadow)
            )

    def wait_idle(self) -> None:
        """Return once every run queued so far has been judged."""
        self._queue.join()

    def close(self, timeout: float = 5.0) -> bool:
        """Judge what is queued, then stop the worker, within ``timeout`` seconds (False: out of time,
        the runs still queued are not judged; the count is logged)."""
        if not drain(self._queue, None, self._thread, timeout):
            log.warning("shadows: %d runs not judged, out of time", self._queue.qsize())
            return False
        return True
