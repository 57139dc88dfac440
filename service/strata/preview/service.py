"""Previews by ruleset name and version references: what the API endpoint and the web console call.

``run_preview`` compares two compiled rulesets. A caller of the service has a
ruleset's name, references to its stored versions (``3``, ``canary``,
``active``) and perhaps a rule file it has not published yet; ``Previews``
resolves those against the registry, bounds the run by the caller's deadline,
and reads the profiles from the read database (a replica, when configured).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from strata.engine import ProfileSchema
from strata.errors import DeadlineExceeded, InvalidArgument, Problem, Unavailable
from strata.preview.result import PreviewResult
from strata.preview.runner import DEFAULT_TIMEOUT_S, Version, run_preview
from strata.preview.sources import from_registry, named
from strata.registry.service import Registry
from strata.rulefiles.loader import compile_rule_file, parse_rule_file

CONTENT_LABEL = "request content"


@dataclass(frozen=True)
class Previews:
    """Impact previews over the registry's versions and the profiles of ``engine``.

    ``max_timeout_s`` caps a preview whose caller set no deadline (or a longer
    one): a preview holds a database connection and a snapshot while it runs.
    """

    registry: Registry
    engine: Engine
    schema: ProfileSchema
    max_timeout_s: float = DEFAULT_TIMEOUT_S

    def preview(
        self,
        name: str,
        *,
        candidate: str = "",
        candidate_content: str = "",
        against: str = "",
        as_of: dt.datetime | None = None,
        deadline: float | None = None,
    ) -> PreviewResult:
        """How ``candidate`` (a stored version) or ``candidate_content`` (a rule file) would
        reclassify every stored profile, compared with ``against`` (default ``active``).

        ``deadline`` is a ``time.monotonic()`` instant. Raises ``NotFound`` for an
        unknown ruleset or version, ``InvalidArgument`` for a bad candidate or a
        ruleset that does not classify, ``DeadlineExceeded`` when time runs out,
        ``Unavailable`` when a database cannot be reached.
        """
        clock = as_of or dt.datetime.now(dt.UTC).replace(microsecond=0)
        try:
            candidate_version = self._candidate(name, candidate, candidate_content)
            baseline = from_registry(self.registry, name, against or "active", self.schema)
            return run_preview(
                self.engine, candidate_version, baseline, clock, timeout_s=self._timeout(deadline)
            )
        except (OperationalError, InterfaceError) as exc:  # a timeout is DeadlineExceeded already
            raise Unavailable("the database is unavailable") from exc

    def _candidate(self, name: str, reference: str, content: str) -> Version:
        if bool(reference) == bool(content):
            raise InvalidArgument(
                "a preview needs one candidate",
                [Problem("give either a stored version or a rule file's content", field="candidate")],
            )
        if reference:
            return from_registry(self.registry, name, reference, self.schema)
        self.registry.head(name)  # an unknown ruleset is not_found, whatever the file says
        rule_file = named(parse_rule_file(content, f"<{name} candidate>"), name, "candidate_content")
        return Version(CONTENT_LABEL, compile_rule_file(rule_file, self.schema))

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.max_timeout_s
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the deadline passed before the preview started")
        return min(remaining, self.max_timeout_s)
