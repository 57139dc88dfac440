"""The registry's active versions as the snapshot the decision service reads.

``refresh`` asks the registry whether anything changed (one cheap query);
only then does it read the active versions, compile what this replica has
not compiled yet, and swap in a new snapshot, one reference assignment,
which readers see whole or not at all. A refresh that fails (the database
is down, or the active versions stopped compiling together) keeps serving
the snapshot it has and says so in the log.
"""

from __future__ import annotations

import logging
import threading

from strata.errors import StrataError, Unavailable
from strata.registry.service import Registry
from strata.rulesets import ACTIVE, Served, Snapshot

log = logging.getLogger(__name__)


class ActiveRulesets:
    """A ``RulesetSource`` that serves each ruleset's active version."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._snapshot = Snapshot(registry.compiled.schema, {})
        self._active: dict[str, int] = {}
        self._marker: int | None = None
        self._unreachable = False
        self._lock = threading.Lock()  # one refresh at a time; readers never wait

    def current(self) -> Snapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Catch up with the registry; True when a new snapshot was swapped in."""
        with self._lock:
            try:
                marker = self._registry.marker()
                if marker == self._marker:
                    return False
                active = self._registry.active_versions()
                compiled = self._registry.compiled.compile_set(active) if active != self._active else None
            except Unavailable as exc:
                if not self._unreachable:  # say it once per outage, not on every poll
                    log.warning("%s (%s); serving the rulesets loaded before", exc, exc.__cause__)
                self._unreachable = True
                return False
            except StrataError as exc:  # only a race between two activations can get here
                log.error("the active versions do not compile together; serving the ones before: %s", exc)
                self._marker = marker
                return False
            self._unreachable, self._marker = False, marker
            if compiled is None:
                return False
            self._snapshot = Snapshot(
                self._snapshot.schema,
                {name: Served(compiled[name], version, ACTIVE) for name, version in active.items()},
            )
            self._active = active
        log.info("serving %s", ", ".join(f"{name}@{version}" for name, version in sorted(active.items())))
        return True
