"""Decision use cases: resolve the rulesets, assemble the profile, let the engine decide.

Transports (gRPC, REST, the CLI) call this and nothing below it, so every
transport applies the same defaults, merges profiles the same way and fails
with the same errors. The order of work is deliberate:

1. the rulesets are read once, as one snapshot, so a reload landing
   mid-request cannot mix versions; they are resolved first, so an unknown
   name fails before any I/O;
2. the deadline is checked before and after the profile is loaded, so a
   caller that has given up costs no evaluation;
3. the merged profile is parsed once, however many decisions are asked for;
4. every decision of one call sees one clock (``as_of``, or now);
5. every answer names the ruleset version that made it, and why that one:
   pinned by the request (``name@3``), the user's arm of the ruleset's
   traffic split (``split:1``, hashed from the user id), or the active one;
6. a ruleset's shadow candidate, for the sampled users of requests not
   pinned, is handed to a background runner with the inputs and the answer,
   and never changes the answer (``strata.shadowrunner``).

Pure Python: no transport, no database imports.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from strata import metrics
from strata.decisionlog import DecisionSink, log_entry
from strata.engine.decision import (
    Decision,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    SegmentDecision,
    quick_init,
)
from strata.engine.facts import Clock
from strata.engine.ruleset import decide_failing_closed
from strata.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    Problem,
    ResourceExhausted,
    StrataError,
    Unavailable,
)
from strata.profiles import ProfileReader, check_same_user, parse_profile
from strata.rulefiles.loader import RuleSet
from strata.rulesets import ACTIVE, PINNED, FixedRulesets, RulesetSource, Served, Snapshot
from strata.shadowrunner import ShadowRun, ShadowRunner

#: The ruleset that answers a kind when a request names none.
DEFAULT_RULESETS: Mapping[str, str] = {
    "lifecycle": "lifecycle.duolingo",
    "segment": "segment.rfm",
    "incentive": "incentive.levels",
    "intervention": "intervention.default",
}
MAX_BATCH = 1000

D = TypeVar("D", bound=Decision)
CountDecision = Callable[[str, int | None, str | None], None]
"""Counts one decision by ruleset, version and why: ``metrics.count_decision`` or a batch's tally."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def deadline_after(seconds: float | None) -> float | None:
    """A ``time.monotonic()`` deadline from a remaining time (None: no deadline)."""
    return None if seconds is None else time.monotonic() + seconds


def check_deadline(deadline: float | None, stage: str) -> None:
    """Stop when the caller's deadline has passed: nobody is waiting for the answer."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(f"deadline exceeded {stage}")


@dataclass(frozen=True)
class DecisionRequest:
    """One decision of one kind; ``ruleset`` empty means the kind's default; ``@3`` or ``@alias`` pins."""

    user_id: str = ""
    profile: Mapping[str, Any] | None = None
    as_of: dt.datetime | None = None
    ruleset: str = ""
    event: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DecideRequest:
    """Several decisions for one user: each entry of ``rulesets`` is a kind or a ruleset name."""

    user_id: str = ""
    profile: Mapping[str, Any] | None = None
    as_of: dt.datetime | None = None
    rulesets: tuple[str, ...] = ()
    event: Mapping[str, Any] | None = None
    explain_facts: bool = True
    """False: the caller will not read the values of the facts in the explanations (``explain``
    RULES or NONE), so they are left out unless the decision log writes the call."""


@quick_init  # a batch builds one per decision
@dataclass(frozen=True)
class Answer(Generic[D]):
    """A decision with its provenance: the ruleset version that made it and why that version.

    Callers log it as the exposure ("user u saw segment.rfm@4, active").
    """

    decision: D
    version: int | None = None
    version_reason: str | None = None


@quick_init
@dataclass(frozen=True)
class DecideResult:
    user_id: str
    decisions: tuple[Answer[Decision], ...]


class DecisionService:
    """The decision use cases over a source of rulesets and an optional profile store.

    Without a store, requests must carry their profile inline; naming only a
    user then fails as an unknown user, like a user missing from the store.
    """

    def __init__(
        self,
        rulesets: RulesetSource,
        profiles: ProfileReader | None = None,
        *,
        now: Callable[[], dt.datetime] = utc_now,
        max_batch: int = MAX_BATCH,
        log: DecisionSink | None = None,
        log_share: float = 1.0,
        shadows: ShadowRunner | None = None,
    ) -> None:
        self.rulesets = rulesets
        self.profiles = profiles
        self.now = now
        self.max_batch = max_batch
        #: Where decisions are written (request, user, ruleset, version, why, result, latency); never blocks.
        self.log = log
        #: The share of calls whose decisions are logged (all of a call's, or none).
        self.log_share = log_share
        #: Where shadow candidates run; None: shadows configured in the registry are not run.
        self.shadows = shadows

    @classmethod
    def from_files(
        cls, rules: RuleSet, profiles: ProfileReader | None = None, **options: Any
    ) -> DecisionService:
        """Decisions by rule files loaded from disk, unversioned (tests, the CLI)."""
        return cls(FixedRulesets(Snapshot.of_files(rules)), profiles, **options)

    # one kind --------------------------------------------------------------

    def decide_kind(
        self, kind: str, request: DecisionRequest, deadline: float | None = None, request_id: str = ""
    ) -> Answer[Decision]:
        """One decision of ``kind`` (a key of ``DEFAULT_RULESETS``): by the request's ruleset,
        which must be of that kind, or the kind's default."""
        snapshot = self.rulesets.current()
        served = self.resolve(snapshot, request.ruleset or kind, "ruleset", kind)
        _, answers = self._run(
            snapshot,
            request.user_id,
            request.profile,
            request.as_of,
            [served],
            request.event,
            deadline,
            request_id,
        )
        return answers[0]

    # The four questions, typed by their answers (the transports call ``decide_kind``).

    def classify_lifecycle(
        self, request: DecisionRequest, deadline: float | None = None, request_id: str = ""
    ) -> Answer[LifecycleDecision]:
        return self._typed(LifecycleDecision, self.decide_kind("lifecycle", request, deadline, request_id))

    def assign_segment(
        self, request: DecisionRequest, deadline: float | None = None, request_id: str = ""
    ) -> Answer[SegmentDecision]:
        return self._typed(SegmentDecision, self.decide_kind("segment", request, deadline, request_id))

    def evaluate_incentive(
        self, request: DecisionRequest, deadline: float | None = None, request_id: str = ""
    ) -> Answer[IncentiveDecision]:
        return self._typed(IncentiveDecision, self.decide_kind("incentive", request, deadline, request_id))

    def recommend_intervention(
        self, request: DecisionRequest, deadline: float | None = None, request_id: str = ""
    ) -> Answer[InterventionDecision]:
        return self._typed(
            InterventionDecision, self.decide_kind("intervention", request, deadline, request_id)
        )

    @staticmethod
    def _typed(result: type[D], answer: Answer[Decision]) -> Answer[D]:
        decision = answer.decision
        if not isinstance(decision, result):  # resolve() checked the kind: a bug if reached
            raise TypeError(f"{decision.ruleset} answered a {type(decision).__name__}, not {result.__name__}")
        return Answer(decision, answer.version, answer.version_reason)

    # several kinds, many users -----------------------------------------------

    def decide(
        self, request: DecideRequest, deadline: float | None = None, request_id: str = ""
    ) -> DecideResult:
        """Every requested decision for one user, in the order asked."""
        return self._decide(self.rulesets.current(), request, deadline, request_id)

    def _decide(
        self,
        snapshot: Snapshot,
        request: DecideRequest,
        deadline: float | None,
        request_id: str = "",
        resolved: dict[tuple[str, ...], list[Served]] | None = None,
        now: dt.datetime | None = None,
        count: CountDecision = metrics.count_decision,
    ) -> DecideResult:
        """``resolved``: the rulesets already resolved for this snapshot (a batch asks for the same
        ones again and again); ``now``: the instant of a request without ``as_of`` (a batch's one
        instant, passed down instead of copying each request to stamp it); ``count``: what counts
        each decision in the metrics (a batch's tally)."""
        if not request.rulesets:
            raise InvalidArgument(
                "name at least one kind or ruleset",
                [Problem(f"expected entries such as {', '.join(DEFAULT_RULESETS)}", field="rulesets")],
            )
        served = resolved.get(request.rulesets) if resolved is not None else None
        if served is None:
            served = [
                self.resolve(snapshot, name, f"rulesets.{index}")
                for index, name in enumerate(request.rulesets)
            ]
            if resolved is not None:
                resolved[request.rulesets] = served
        user_id, answers = self._run(
            snapshot,
            request.user_id,
            request.profile,
            request.as_of or now,
            served,
            request.event,
            deadline,
            request_id,
            skip_facts=not request.explain_facts,
            count=count,
        )
        return DecideResult(user_id, answers)

    def decide_batch(
        self, requests: Sequence[DecideRequest], deadline: float | None = None, request_id: str = ""
    ) -> list[DecideResult | StrataError]:
        """Each request answered on its own: one unknown user does not fail the others.

        A passed deadline fails the whole call, since nobody waits for the rest.
        The whole batch is judged by one snapshot of the rulesets, and logged
        under one request id. Its decisions are counted in the metrics once it stops.
        """
        if len(requests) > self.max_batch:
            raise ResourceExhausted(
                f"a batch holds at most {self.max_batch} requests",
                [Problem(f"got {len(requests)}", field="requests")],
            )
        now, snapshot = self.now(), self.rulesets.current()
        results: list[DecideResult | StrataError] = []
        resolved: dict[tuple[str, ...], list[Served]] = {}
        tally = metrics.DecisionTally()
        try:
            for request in requests:
                check_deadline(deadline, "during the batch")
                try:
                    results.append(
                        self._decide(snapshot, request, deadline, request_id, resolved, now, tally)
                    )
                except DeadlineExceeded:
                    raise
                except StrataError as exc:
                    results.append(exc)
        finally:  # a batch stopped by its deadline still made the decisions it made
            tally.add()
        return results

    # shared steps ----------------------------------------------------------

    @staticmethod
    def resolve(snapshot: Snapshot, name: str, field: str, kind: str | None = None) -> Served:
        """A ruleset by name, or a kind's default; ``kind`` also checks the ruleset's kind.

        ``name@3`` or ``name@stable`` pins a version by number or alias (a
        kind may be pinned too: ``lifecycle@3``); unknown ones are not found.
        """
        name, at, ref = name.partition("@")
        name = DEFAULT_RULESETS.get(name or kind or "", name)
        served = snapshot.rulesets.get(name)
        if at:
            if not ref:
                raise InvalidArgument(
                    f"name a version or an alias after {name + '@'!r}",
                    [Problem("expected name@3 or name@stable", field=field)],
                )
            if snapshot.pins is None:
                raise NotFound(
                    f"ruleset {name!r} has no versions to pin: its rules are loaded from files",
                    [Problem("unknown version", field=field)],
                )
            try:
                served = snapshot.pins.pin(snapshot, name, ref)
            except NotFound as exc:
                raise NotFound(exc.message, [Problem(exc.problems[0].message, field=field)]) from None
        if served is None:
            if not snapshot.rulesets:  # never "unknown ruleset" for everything: nothing is loaded yet
                raise Unavailable("no rulesets are loaded yet: the rule registry's database is unavailable")
            raise NotFound(f"no ruleset named {name!r}", [Problem("unknown ruleset", field=field)])
        if kind is not None and served.compiled.kind != kind:
            raise InvalidArgument(
                f"ruleset {name!r} is a {served.compiled.kind} ruleset, not {kind}",
                [Problem(f"expected a {kind} ruleset", field=field)],
            )
        return served

    @staticmethod
    def split(snapshot: Snapshot, served: Served, user_id: str) -> Served:
        """The user's arm of the ruleset's traffic split, if it has one and the request pinned nothing."""
        split = snapshot.splits.get(served.compiled.name) if served.reason == ACTIVE else None
        arm = split.choose(user_id) if split is not None else None
        return served if arm is None else arm

    def profile(
        self, user_id: str, inline: Mapping[str, Any] | None, deadline: float | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The user's id and raw profile: stored fields, overridden by inline ones.

        The store is read only when the request names ``user_id``; a request
        with only an inline profile is judged on exactly what it sent.
        """
        if inline is not None and not isinstance(inline, Mapping):
            raise InvalidArgument(
                "a profile must be a JSON object", [Problem("not an object", field="profile")]
            )
        if not user_id:
            if inline is None:
                raise InvalidArgument(
                    "name a user_id or send a profile", [Problem("missing", field="user_id")]
                )
            raw = dict(inline)
            inline_id = raw.get("user_id")
            return (inline_id if isinstance(inline_id, str) else ""), raw
        if inline is not None:
            check_same_user(user_id, inline)
        check_deadline(deadline, "before loading the profile")
        stored = self.profiles.get(user_id, deadline) if self.profiles is not None else None
        check_deadline(deadline, "after loading the profile")
        if stored is None and inline is None:
            raise NotFound(f"no profile for user {user_id!r}", [Problem("unknown user", field="user_id")])
        return user_id, {**(stored or {}), **(inline or {}), "user_id": user_id}

    def _run(
        self,
        snapshot: Snapshot,
        user_id: str,
        inline: Mapping[str, Any] | None,
        as_of: dt.datetime | None,
        rulesets: Sequence[Served],
        event: Mapping[str, Any] | None,
        deadline: float | None,
        request_id: str = "",
        skip_facts: bool = False,
        count: CountDecision = metrics.count_decision,
    ) -> tuple[str, tuple[Answer[Decision], ...]]:
        user_id, raw = self.profile(user_id, inline, deadline)
        if snapshot.splits:
            rulesets = [self.split(snapshot, served, user_id) for served in rulesets]
        profile = parse_profile(snapshot.schema, raw)
        instant = as_of or self.now()
        clock = Clock.for_profile(instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC), profile)
        answers: list[Answer[Decision]] = []
        memo: dict[str, Any] = {}  # one profile, one clock: derived facts are worked out once for all
        shared: dict[Any, Any] = {}  # and an intervention reuses the answers its rulesets gave
        log = self.log if self.log_share >= 1 or random.random() < self.log_share else None
        skip = skip_facts and log is None  # the log writes each decision, explanation and all
        for served in rulesets:
            compiled = served.compiled
            if deadline is not None:  # the label is formatted only when there is a deadline to miss
                check_deadline(deadline, f"before {compiled.name}")
            started = time.perf_counter() if log is not None else 0.0
            decision = decide_failing_closed(
                compiled, compiled.facts(profile, clock, memo, shared, skip), event
            )
            answers.append(Answer(decision, served.version, served.reason))
            count(compiled.name, served.version, served.reason)
            if snapshot.shadows and self.shadows is not None and served.reason != PINNED:
                self._shadow(snapshot, served, decision, profile, clock, event, user_id, request_id, instant)
            if log is not None:
                latency_ms = round((time.perf_counter() - started) * 1000, 3)
                log.record(
                    log_entry(instant, request_id, user_id, served, decision.to_dict(), latency_ms=latency_ms)
                )
        return user_id, tuple(answers)

    def _shadow(
        self,
        snapshot: Snapshot,
        served: Served,
        decision: Decision,
        profile: Any,
        clock: Clock,
        event: Mapping[str, Any] | None,
        user_id: str,
        request_id: str,
        instant: dt.datetime,
    ) -> None:
        """Hand the ruleset's shadow candidate to the runner, if the user is sampled."""
        shadow = snapshot.shadows.get(served.compiled.name)
        if shadow is None or shadow.candidate.version == served.version or self.shadows is None:
            return
        if shadow.shadow.sampled(user_id):
            self.shadows.submit(
                ShadowRun(
                    shadow.candidate,
                    served,
                    decision,
                    profile,
                    clock,
                    event,
                    user_id,
                    request_id,
                    instant,
                )
            )
