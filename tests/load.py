"""The thread handling every load loop of the tests shares (hot reload, outage, SIGTERM under load).

Each test keeps its own loop, since what a loop calls and records is the
test; starting the threads, telling them to end and waiting for them is the
same everywhere, and lives here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class LoadThreads:
    """Daemon threads, each running one load loop until ``stop``.

    A loop runs ``while threads.running: ...``. ``stop`` ends them all and
    waits for each (up to ``timeout`` seconds), so what the loops recorded is
    complete when the test reads it; daemon threads never keep a failed test's
    process alive.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def start(self, loop: Callable[..., None], args: Iterable[tuple[Any, ...]]) -> None:
        """One thread for each entry of ``args``, running ``loop(*entry)``."""
        for entry in args:
            thread = threading.Thread(target=loop, args=entry, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
