"""What the console reads, apart from Flask: the same use cases the API and the CLI call.

The console never calls the REST API over HTTP: it holds the registry, the
decision service and the token checker of its own process, so a page sees
exactly what an API call would, and refuses what it would refuse, with the
same error messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strata.access.tokens import Tokens
from strata.decisions import DEFAULT_RULESETS, DecideRequest, DecideResult, DecisionService
from strata.engine.decision import Decision, InterventionDecision
from strata.engine.facts import DERIVED_FACTS
from strata.engine.schema import parse_datetime
from strata.errors import InvalidArgument, Problem, RuleFileError, StrataError
from strata.preview.classify import CLASSIFYING_KINDS
from strata.preview.service import Previews
from strata.registry.records import Head, VersionRecord
from strata.registry.service import Registry
from strata.rulefiles.casetests import CaseResult, run_cases

KINDS = tuple(DEFAULT_RULESETS)


@dataclass(frozen=True)
class Console:
    """The services the console pages call; ``secret`` signs the session cookie (empty: console off)."""

    registry: Registry
    decisions: DecisionService
    tokens: Tokens
    #: Impact previews, as the API's Preview call runs them (from a read replica when configured).
    previews: Previews
    #: Makes this process serve a change at once (other replicas follow within a second).
    refresh: Callable[[], object]
    secret: str


@dataclass(frozen=True)
class FactRead:
    """A name a version's rules read: what it is, what it means, and which rules read it."""

    name: str
    source: str  # profile field | derived fact | constant | input of the kind
    doc: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class VersionReport:
    """A version as its page shows it; ``error`` when it does not compile with the active rulesets."""

    record: VersionRecord
    results: tuple[CaseResult, ...]
    facts: tuple[FactRead, ...]
    error: StrataError | None

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)


def version_report(registry: Registry, name: str, version: int) -> VersionReport:
    """A version with its test cases run and the facts it reads, compiled against the active rulesets."""
    record = registry.version(name, version)
    try:
        active = registry.compiled.compile_set(registry.active_versions())
        compiled = registry.compiled.compile_version(name, version, active)
    except RuleFileError as exc:
        return VersionReport(record, (), (), exc)
    schema = registry.compiled.schema
    facts = []
    for fact, rules in sorted(compiled.reads.items()):
        if fact in schema.fields:
            source, doc = "profile field", schema.fields[fact].doc
        elif fact in DERIVED_FACTS:
            source, doc = "derived fact", DERIVED_FACTS[fact].doc
        elif fact in compiled.constants:
            source, doc = "constant", f"= {compiled.constants[fact]!r}"
        else:
            source, doc = "input of the kind", ""
        facts.append(FactRead(fact, source, doc, tuple(sorted(rules))))
    return VersionReport(record, tuple(run_cases(compiled)), tuple(facts), None)


def last_changes(registry: Registry, heads: list[Head]) -> dict[str, str]:
    """Each ruleset's newest audit entry, as "action by actor at time"."""
    changes = {}
    for head in heads:
        entries = registry.audit(head.name, limit=1)
        if entries:
            entry = entries[0]
            changes[head.name] = f"{entry.action} by {entry.actor}, {entry.at:%Y-%m-%d %H:%M} UTC"
    return changes


def can_preview(kind: str) -> bool:
    """Impact previews classify users: lifecycle and segment rulesets only."""
    return kind in CLASSIFYING_KINDS


def _json_object(text: str, field: str) -> dict[str, Any] | None:
    """A pasted JSON object (None when blank), or an error naming the field and the position."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"the {field} is not valid JSON", [Problem(f"line {exc.lineno}: {exc.msg}", field=field)]
        ) from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"the {field} must be a JSON object", [Problem("not an object", field=field)])
    return value


def try_decisions(decisions: DecisionService, form: Mapping[str, str]) -> DecideResult:
    """The four decisions for a stored user or a pasted profile, each under the chosen version.

    ``form`` holds ``user_id``, ``profile`` and ``event`` (JSON), ``as_of``
    (ISO 8601, default now) and one ruleset reference per kind
    (``lifecycle.duolingo`` for its active version or split, ``lifecycle.duolingo@3`` pinned).
    """
    as_of = None
    if form.get("as_of", "").strip():
        try:
            as_of = parse_datetime(form["as_of"].strip())
        except ValueError as exc:
            raise InvalidArgument("invalid as_of", [Problem(str(exc), field="as_of")]) from None
    return decisions.decide(
        DecideRequest(
            user_id=form.get("user_id", "").strip(),
            profile=_json_object(form.get("profile", ""), "profile"),
            as_of=as_of,
            rulesets=tuple(form.get(kind) or kind for kind in KINDS),
            event=_json_object(form.get("event", ""), "event"),
        )
    )


def ruleset_choices(registry: Registry) -> dict[str, list[tuple[str, str]]]:
    """Per kind, the references "Try" offers: each ruleset as served (active or split), then each version."""
    choices: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
    for head in registry.rulesets():
        options = choices.setdefault(head.kind, [])
        options.append((head.name, f"{head.name} (as served: active v{head.active_version})"))
        for record in registry.versions(head.name):
            options.append((f"{head.name}@{record.version}", f"{head.name}@{record.version}"))
    return choices


def outcome(decision: Decision) -> dict[str, Any]:
    """A decision's result fields, without the stamp and explanation shown beside them."""
    fields = decision.to_dict()
    for name in ("ruleset", "checksum", "explanation"):
        fields.pop(name, None)
    if isinstance(
        decision, InterventionDecision
    ):  # the actions' ids and channels; their reasons are in "Why"
        fields["actions"] = (
            ", ".join(f"{action.id} ({action.channel})" for action in decision.actions) or "none"
        )
        fields["skipped"] = (
            ", ".join(f"{skipped.id} ({skipped.why})" for skipped in decision.skipped) or "none"
        )
    return {
        name: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for name, value in fields.items()
    }
