"""Test doubles shared by unit and e2e tests."""

from __future__ import annotations

import copy
import functools
import threading
import time
from typing import Any

from strata.rulefiles.loader import RuleSet, load_paths
from tests.conftest import RULES_DIR


class DictStore:
    """An in-memory profile store with the ProfileStore interface.

    ``delays`` makes ``get`` slow for chosen users (deadline tests); ``gets``
    counts reads, so tests can check when the store was (not) consulted.
    """

    def __init__(self, profiles: dict[str, dict[str, Any]] | None = None) -> None:
        self.profiles = {key: copy.deepcopy(value) for key, value in (profiles or {}).items()}
        self.delays: dict[str, float] = {}
        self.gets = 0
        self._lock = threading.Lock()

    def get(self, user_id: str, deadline: float | None = None) -> dict[str, Any] | None:
        with self._lock:
            self.gets += 1
        delay = self.delays.get(user_id)
        if delay:
            time.sleep(delay)
        with self._lock:
            found = self.profiles.get(user_id)
            return copy.deepcopy(found) if found is not None else None

    def upsert(self, profile: dict[str, Any]) -> None:
        with self._lock:
            self.profiles[profile["user_id"]] = copy.deepcopy(dict(profile))

    def delete(self, user_id: str) -> bool:
        with self._lock:
            return self.profiles.pop(user_id, None) is not None


@functools.cache
def default_rules() -> RuleSet:
    """The rule files shipped in rules/, compiled once per test process."""
    rules, _ = load_paths([RULES_DIR])
    return rules


AS_OF = "2026-03-10T12:00:00Z"

#: Stored users for transport tests, at AS_OF.
PROFILES: dict[str, dict[str, Any]] = {
    "u-current": {
        "user_id": "u-current",
        "registered_at": "2025-09-01T08:00:00Z",
        "first_active_date": "2025-09-01",
        "activity_dates": ["2026-03-08", "2026-03-09", "2026-03-10"],
        "last_active_at": "2026-03-10T09:00:00Z",
        "orders_365d": 14,
        "spend_365d": 1250.5,
        "last_order_at": "2026-03-05T18:00:00Z",
        "points": 380,
        "level": 3,
        "streak_days": 4,
        "last_checkin_date": "2026-03-09",
        "daily_points": {"note_published": 10},
        "daily_points_date": "2026-03-10",
        "followers_count": 1200,
        "posts_30d": 9,
        "tags": ["fashion"],
    },
    "u-new": {
        "user_id": "u-new",
        "registered_at": "2026-03-10T07:00:00Z",
        "first_active_date": "2026-03-10",
        "activity_dates": ["2026-03-10"],
        "profile_fields_completed": 1,
    },
    "u-lapsed": {
        "user_id": "u-lapsed",
        "registered_at": "2025-01-01T00:00:00Z",
        "first_active_date": "2025-01-01",
        "activity_dates": ["2026-02-20"],
        "orders_365d": 3,
        "spend_365d": 90,
        "last_order_at": "2025-12-01T00:00:00Z",
        "last_sent": {"recall_coupon": "2026-03-09T00:00:00Z"},
    },
}
