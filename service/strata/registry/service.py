"""The registry's use cases: what publishing, activating, aliasing and rolling back mean.

Shared by both transports and the CLI, so each refuses the same things the
same way:

- a publish is parsed, type checked against the active versions of the
  rulesets it ``uses:``, and its own test cases are run; any failure refuses
  it with every problem listed, and nothing is stored. The same content
  again (same checksum) returns the version already stored.
- every change to a head quotes the revision the caller last read; a stale
  one is a ``Conflict``, so two people acting on the same view cannot
  silently undo each other. The check is repeated atomically in the store.
- an activation or rollback must leave every active version compiling
  together (a new segment version must not break an intervention reading
  its scores).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from strata.engine import CompiledRuleset, ProfileSchema
from strata.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Problem,
    ResourceExhausted,
    RuleFileError,
    RuleTestFailure,
)
from strata.registry.cache import CompiledVersions, source_name
from strata.registry.records import AuditRecord, Head, Published, VersionRecord
from strata.registry.store import RegistryStore
from strata.rulefiles.casetests import CaseResult, run_cases
from strata.rulefiles.loader import RuleFile, parse_rule_file
from strata.rulefiles.yamldoc import MAX_FILE_BYTES
from strata.shadows import Shadow
from strata.splits import Split

MAX_NOTE_CHARS = 2000
MAX_AUDIT_PAGE = 1000
PUBLISH_ATTEMPTS = 3
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def _conflict(name: str, expected: int, current: int) -> Conflict:
    return Conflict(
        f"ruleset {name!r} is at revision {current}, not {expected}: it changed since you read it",
        [Problem("read the ruleset again, then decide", field="expected_revision")],
    )


def check_alias(alias: str) -> None:
    """Refuse an alias name that could not be used in a pin (``name@alias``)."""
    if not ALIAS.match(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}",
            [Problem("lower-case letters, digits, '_' and '-', starting with a letter", field="alias")],
        )


def _test_problems(rule_file: RuleFile, results: list[CaseResult]) -> list[Problem]:
    """One located problem per failing expectation of the file's own test cases."""
    problems = []
    for index, result in enumerate(results):
        if result.error:
            problems.append(Problem(f"test {result.case!r}: {result.error}", field=f"tests.{index}"))
        for name, (expected, actual) in result.mismatches.items():
            problems.append(
                Problem(
                    f"test {result.case!r}: {name}: expected {expected!r}, got {actual!r}",
                    field=f"tests.{index}.expect.{name}",
                )
            )
    return [rule_file.document.locate(problem) for problem in problems]


class Registry:
    """Publish, read, activate, alias, roll back and audit rule file versions."""

    def __init__(self, store: RegistryStore, schema: ProfileSchema) -> None:
        self._store = store
        #: This process's compiled versions, shared with the serving side.
        self.compiled = CompiledVersions(schema, self._content)

    def _content(self, name: str, version: int) -> str:
        return self.version(name, version).content or ""

    # publishing --------------------------------------------------------------------

    def publish(
        self, content: str, author: str, note: str = "", *, name: str | None = None, source: str | None = None
    ) -> Published:
        """Validate, type check and test ``content``, then store it as the ruleset's next version.

        ``name``, when given (the REST path), must be the name the file
        declares. ``source`` names the content in error messages (a path).
        """
        size = len(content.encode())
        if size > MAX_FILE_BYTES:
            raise ResourceExhausted(
                "the rule file is too large",
                [Problem(f"{size} bytes; at most {MAX_FILE_BYTES} are accepted", field="content")],
            )
        if not author.strip():
            raise InvalidArgument("a publish needs an author", [Problem("empty", field="author")])
        if len(note) > MAX_NOTE_CHARS:
            raise InvalidArgument(
                "the note is too long", [Problem(f"at most {MAX_NOTE_CHARS} characters", field="note")]
            )
        rule_file = parse_rule_file(content, source or f"<{name or 'published rule file'}>")
        if name is not None and rule_file.name != name:
            problem = Problem(f"the file declares {rule_file.name!r}, not {name!r}", field="name")
            raise InvalidArgument(
                "the rule file is for another ruleset", [rule_file.document.locate(problem)]
            )
        existing = self._store.find_checksum(rule_file.name, rule_file.checksum)
        if existing is not None:
            return Published(existing, created=False)
        self._check_kind(rule_file)
        results = run_cases(self._compile_candidate(rule_file))
        failed = sum(not result.passed for result in results)
        if failed:
            raise RuleTestFailure(
                f"{failed} of {len(results)} test cases of {rule_file.name!r} fail",
                _test_problems(rule_file, results),
            )
        return self._store_new(rule_file, content, author, note)

    def _check_kind(self, rule_file: RuleFile) -> None:
        for head in self._store.heads(rule_file.name):
            if head.kind != rule_file.kind:
                problem = Problem(f"{rule_file.name!r} is a {head.kind} ruleset", field="kind")
                raise InvalidArgument(
                    "a new version cannot change a ruleset's kind", [rule_file.document.locate(problem)]
                )

    def _compile_candidate(self, rule_file: RuleFile) -> CompiledRuleset[Any]:
        """Compile against the active versions of the rulesets the file uses."""
        active = self._store.active_versions()
        dependencies = self.compiled.compile_set(
            {name: active[name] for name in rule_file.dependencies() if name in active}
        )
        return self.compiled.compile(rule_file, dependencies)

    def _store_new(self, rule_file: RuleFile, content: str, author: str, note: str) -> Published:
        """Insert, or return the version a concurrent publish of the same content stored first."""
        for _ in range(PUBLISH_ATTEMPTS):
            try:
                record = self._store.insert_version(
                    rule_file.name, rule_file.kind, rule_file.checksum, content, author, note
                )
                return Published(record, created=True)
            except IntegrityError:  # lost a race for the number or the checksum: look again
                existing = self._store.find_checksum(rule_file.name, rule_file.checksum)
                if existing is not None:
                    return Published(existing, created=False)
        raise Conflict(f"ruleset {rule_file.name!r} is being published concurrently; try again")

    # reading -----------------------------------------------------------------------

    def rulesets(self) -> list[Head]:
        return self._store.heads()

    def head(self, name: str) -> Head:
        heads = self._store.heads(name)
        if not heads:
            raise NotFound(f"no ruleset named {name!r}", [Problem("unknown ruleset", field="name")])
        return heads[0]

    def versions(self, name: str) -> list[VersionRecord]:
        self.head(name)
        return self._store.versions(name)

    def version(self, name: str, version: int) -> VersionRecord:
        """One version, with its content."""
        record = self._store.version(name, version)
        if record is None:
            self.head(name)
            raise NotFound(
                f"ruleset {name!r} has no version {version}", [Problem("unknown version", field="version")]
            )
        return record

    def diff(self, name: str, from_version: int, to_version: int) -> str:
        """A unified diff of two versions' contents, as written (comments and layout included)."""
        old, new = self.version(name, from_version), self.version(name, to_version)
        return "".join(
            difflib.unified_diff(
                (old.content or "").splitlines(keepends=True),
                (new.content or "").splitlines(keepends=True),
                fromfile=source_name(name, from_version),
                tofile=source_name(name, to_version),
            )
        )

    def active_versions(self) -> dict[str, int]:
        """Ruleset name -> active version, for every ruleset that has one."""
        return self._store.active_versions()

    def marker(self) -> int:
        """A number that grows with every change: cheap to poll for "anything new?"."""
        return self._store.marker()

    def audit(self, ruleset: str = "", limit: int = 100, before: int | None = None) -> list[AuditRecord]:
        """Audit entries, newest first; page back with ``before``, the last id seen."""
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise InvalidArgument("limit out of range", [Problem(f"1..{MAX_AUDIT_PAGE}", field="limit")])
        return self._store.audit(ruleset or None, limit, before)

    # changing ----------------------------------------------------------------------

    def activate(self, name: str, version: int, expected_revision: int, actor: str) -> Head:
        """Make ``version`` the one that answers; activating the active version changes nothing."""
        head = self.at_revision(name, expected_revision)
        self.version(name, version)
        if head.active_version == version:
            return head
        return self._move(head, version, "activate", actor)

    def rollback(self, name: str, expected_revision: int, actor: str) -> Head:
        """Undo the last activation: back to the version that was active before it."""
        head = self.at_revision(name, expected_revision)
        return self._move(head, self.rollback_target(head), "rollback", actor)

    def rollback_target(self, head: Head) -> int:
        """The version a rollback would activate; ``FailedPrecondition`` if there is none.

        The history is the audit trail: activations push a version,
        rollbacks pop one, so repeated rollbacks walk further back.
        """
        history: list[int] = []
        for entry in self._store.activations(head.name):
            if entry.action == "activate" and entry.to_version is not None:
                history.append(entry.to_version)
            elif history:
                history.pop()
        if len(history) < 2:
            raise FailedPrecondition(
                f"ruleset {head.name!r} has no earlier active version to roll back to",
                [Problem(f"active version: {head.active_version}", field="name")],
            )
        return history[-2]

    def set_alias(self, name: str, alias: str, version: int, expected_revision: int, actor: str) -> Head:
        """Point ``alias`` (``stable``, ``canary``, ...) at ``version``."""
        check_alias(alias)
        head = self.at_revision(name, expected_revision)
        self.version(name, version)
        previous = head.aliases.get(alias)
        if previous == version:
            return head
        if not self._store.set_alias(name, alias, version, expected_revision, actor, previous):
            raise _conflict(name, expected_revision, self.head(name).revision)
        return self.head(name)

    def splits(self) -> dict[str, Split]:
        """Ruleset name -> its traffic split, for every ruleset that has one."""
        return self._store.splits()

    def split(self, name: str) -> Split | None:
        self.head(name)
        return self._store.splits().get(name)

    def set_split(self, name: str, split: Split, expected_revision: int, actor: str) -> Head:
        """Split ``name``'s traffic between versions (or change its split).

        Every arm's version must exist and compile with the active versions
        of the rulesets it uses. Users outside the coverage get the active version.
        """
        head = self.at_revision(name, expected_revision)
        for index, version in enumerate(split.versions):
            self._check_compiles(name, version, f"versions.{index}")
        unchanged = self._store.splits().get(name) == split
        return self._change(head, unchanged, lambda: self._store.set_split(name, split, head.revision, actor))

    def end_split(self, name: str, expected_revision: int, actor: str) -> Head:
        """End ``name``'s split: every user gets the active version again."""
        head = self.at_revision(name, expected_revision)
        unchanged = name not in self._store.splits()
        return self._change(head, unchanged, lambda: self._store.set_split(name, None, head.revision, actor))

    def shadows(self) -> dict[str, Shadow]:
        """Ruleset name -> its shadow, for every ruleset that has one."""
        return self._store.shadows()

    def shadow(self, name: str) -> Shadow | None:
        self.head(name)
        return self._store.shadows().get(name)

    def set_shadow(self, name: str, shadow: Shadow, expected_revision: int, actor: str) -> Head:
        """Run ``shadow.version`` beside whichever version answers ``name`` (or change the shadow).

        The candidate must exist and compile with the active versions of the
        rulesets it uses. Its answers are compared, counted and logged, never returned.
        """
        head = self.at_revision(name, expected_revision)
        self._check_compiles(name, shadow.version, "version")
        unchanged = self._store.shadows().get(name) == shadow
        return self._change(
            head, unchanged, lambda: self._store.set_shadow(name, shadow, head.revision, actor)
        )

    def end_shadow(self, name: str, expected_revision: int, actor: str) -> Head:
        """Stop running ``name``'s candidate."""
        head = self.at_revision(name, expected_revision)
        unchanged = name not in self._store.shadows()
        return self._change(head, unchanged, lambda: self._store.set_shadow(name, None, head.revision, actor))

    def _change(self, head: Head, unchanged: bool, write: Callable[[], bool]) -> Head:
        """Run ``write`` (a compare-and-set at ``head``'s revision) unless nothing would change."""
        if unchanged:
            return head
        if not write():
            raise _conflict(head.name, head.revision, self.head(head.name).revision)
        return self.head(head.name)

    def _check_compiles(self, name: str, version: int, field: str) -> None:
        """Refuse a version that is missing, or that does not compile with the active rulesets."""
        self.version(name, version)
        try:
            self.compiled.compile_set({**self._store.active_versions(), name: version})
        except RuleFileError as exc:
            raise FailedPrecondition(
                f"{source_name(name, version)} does not compile with the active rulesets",
                [Problem(problem.message, field=field) for problem in exc.problems],
            ) from None

    def at_revision(self, name: str, expected_revision: int) -> Head:
        """The ruleset's head, if it is still at ``expected_revision``; a ``Conflict`` otherwise.

        Public so that a confirmation step can refuse a stale page before the change itself.
        """
        head = self.head(name)
        if head.revision != expected_revision:
            raise _conflict(name, expected_revision, head.revision)
        return head

    def _move(self, head: Head, version: int, action: str, actor: str) -> Head:
        """Move the active version after checking every active version still compiles with it."""
        try:
            self.compiled.compile_set({**self._store.active_versions(), head.name: version})
        except RuleFileError as exc:
            raise FailedPrecondition(
                f"activating {source_name(head.name, version)} would break the active rulesets", exc.problems
            ) from None
        if not self._store.move_head(head.name, head.revision, version, action, actor, head.active_version):
            raise _conflict(head.name, head.revision, self.head(head.name).revision)
        return self.head(head.name)
