"""The decision log: every decision written as a JSON line by a background thread, never in the way.

``record`` only puts the entry on a bounded queue (``put_nowait``): when the
writer has fallen behind and the queue is full, the entry is dropped and
counted (``dropped``, and the ``strata_decision_log_dropped`` metric), so a slow disk costs decisions their log lines, never
their latency. The writer thread owns the file and appends each batch it
drains in whole lines; ``close`` writes what is queued and stops it (``strata serve``
calls it on SIGTERM, once calls have drained, within the grace period).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import select
import stat
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from strata import metrics

if TYPE_CHECKING:
    from strata.rulesets import Served

DEFAULT_CAPACITY = 10_000
_STOP = object()
T = TypeVar("T")
log = logging.getLogger(__name__)


def drain(work: queue.Queue[T], sentinel: T, worker: threading.Thread, timeout: float) -> bool:
    """Queue ``sentinel`` behind what is queued and wait for ``worker`` to reach it and stop, for
    at most ``timeout`` seconds in all; False when time ran out first.

    How the decision log and the shadow runner stop: what was queued before
    the stop is still done, and a stuck worker cannot hold a shutdown past its
    grace period.
    """
    deadline = time.monotonic() + timeout
    try:
        work.put(sentinel, timeout=timeout)
    except queue.Full:
        return False
    worker.join(max(0.0, deadline - time.monotonic()))
    return not worker.is_alive()


def log_entry(
    at: dt.datetime, request_id: str, user_id: str, served: Served, result: dict[str, Any], **more: Any
) -> dict[str, Any]:
    """One decision as the log writes it: when, for which call and user, which ruleset version
    answered and why, and its result; ``more`` adds what the writer knows besides (the
    request's latency, a shadow candidate's result)."""
    return {
        "at": at.isoformat(),
        "request_id": request_id,
        "user_id": user_id,
        "ruleset": served.compiled.name,
        "version": served.version,
        "version_reason": served.reason,
        "result": result,
        **more,
    }


class DecisionSink(Protocol):
    """Where the decision service sends its log entries; ``record`` must never block."""

    def record(self, entry: dict[str, Any]) -> bool: ...


class JsonLinesLog:
    """A bounded, asynchronous JSON lines decision log; full means dropped (and counted), not blocked."""

    def __init__(self, path: Path | str, capacity: int = DEFAULT_CAPACITY) -> None:
        self.path = Path(path)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self._file: IO[bytes] = self.path.open("ab", buffering=0)  # see ``_append``
        self._pipe = stat.S_ISFIFO(os.fstat(self._file.fileno()).st_mode)
        self._thread = threading.Thread(target=self._write, name="decision-log", daemon=True)
        self._thread.start()

    def record(self, entry: dict[str, Any]) -> bool:
        """Queue ``entry``; False (and one more drop counted) when the log is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            metrics.LOG_DROPPED.inc()
            return False
        return True

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while len(batch) < 1000:  # drain what is there, then flush once
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [orjson.dumps(entry, default=str) + b"\n" for entry in batch if entry is not _STOP]
            try:
                self._append(lines)
            except OSError as exc:  # a full disk, a FIFO's reader gone: these lines are lost, not the writer
                log.error("decision log: %d entries not written: %s", len(lines), exc)
                with self._lock:
                    self.dropped += len(lines)
                metrics.LOG_DROPPED.inc(len(lines))
            else:
                with self._lock:
                    self.written += len(lines)
                metrics.LOG_WRITTEN.inc(len(lines))
            if any(entry is _STOP for entry in batch):
                return

    def _append(self, lines: list[bytes]) -> None:
        """Write whole lines, in as few ``write`` calls as keep each one whole, on the unbuffered file.

        Several serving processes (``--grpc-processes``) may share one log: a file, where the
        kernel appends each ``write`` whole (so a batch is one), or a pipe (a FIFO read by a log
        shipper), where it keeps a ``write`` whole only up to ``PIPE_BUF`` bytes and larger ones
        can interleave with another writer's. There lines go in writes of at most ``PIPE_BUF``
        bytes, a longer line in a write of its own (the one case left that can interleave). A
        short write (a full disk, a signal) goes on from where it stopped.
        """
        if not self._pipe:
            self._write_all(b"".join(lines))
            return
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > select.PIPE_BUF:
                self._write_all(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write_all(b"".join(chunk))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written:]

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, then stop the writer and close the file, within ``timeout`` seconds.

        False when time ran out: what is still queued is not written (the count
        is logged), and the file is left to the process's exit to close, as the
        writer may be in the middle of a write.
        """
        if not drain(self._queue, _STOP, self._thread, timeout):
            log.warning("decision log: %d entries not written, out of time", self._queue.qsize())
            return False
        self._file.close()
        return True
