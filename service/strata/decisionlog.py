"""The decision log: every decision written as a JSON line by a background thread, never in the way.

``record`` only puts the entry on a bounded queue (``put_nowait``): when the
writer has fallen behind and the queue is full, the entry is dropped and
counted (``dropped``, and the ``strata_decision_log_dropped`` metric), so a slow disk costs decisions their log lines, never
their latency. The writer thread owns the file and flushes after each batch
it drains; ``close`` writes what is queued and stops it.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from strata import metrics

DEFAULT_CAPACITY = 10_000
_STOP = object()


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
        self._file: IO[bytes] = self.path.open("ab")
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
            self._file.writelines(lines)
            self._file.flush()
            with self._lock:
                self.written += len(lines)
            metrics.LOG_WRITTEN.inc(len(lines))
            if any(entry is _STOP for entry in batch):
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer and close the file."""
        self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._file.close()
