"""The profile store as the request path sees it: bounded by the deadline, outages as ``Unavailable``.

Without this a database restart would surface as ``internal`` errors, which
clients must not retry, and a stalled database would hold a request (and a
worker thread) past the time anyone waits for it. SQLAlchemy stays out of
the use cases: they see ``Unavailable`` (503, retryable) or
``DeadlineExceeded`` (504).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from strata.errors import DeadlineExceeded, Unavailable
from strata.store.profiles import ProfileStore
from strata.store.timeouts import bounded

T = TypeVar("T")
#: Time kept back from a request's deadline to turn a database timeout into an answer.
ANSWER_RESERVE_S = 0.02


class GuardedStore:
    """Wraps a store: each read gets ``timeout`` seconds, or what the deadline leaves if less."""

    def __init__(self, store: ProfileStore, timeout: float) -> None:
        self._store = store
        self._timeout = timeout

    def _call(self, call: Callable[[], T], deadline: float | None = None) -> T:
        budget = self._timeout
        if deadline is not None:
            budget = min(budget, deadline - time.monotonic() - ANSWER_RESERVE_S)
            if budget <= 0:
                raise DeadlineExceeded("deadline exceeded before loading the profile")
        try:
            with bounded(budget):
                return call()
        except (OperationalError, PoolTimeout) as exc:
            if deadline is not None and time.monotonic() >= deadline - ANSWER_RESERVE_S:
                raise DeadlineExceeded("deadline exceeded while loading the profile") from exc
            raise Unavailable("the profile database is unavailable") from exc

    def get(self, user_id: str, deadline: float | None = None) -> dict[str, Any] | None:
        return self._call(lambda: self._store.get(user_id), deadline)

    def upsert(self, profile: dict[str, Any]) -> None:
        self._call(lambda: self._store.upsert(profile))

    def delete(self, user_id: str) -> bool:
        return self._call(lambda: self._store.delete(user_id))
