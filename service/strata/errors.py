"""The error tree: every failure Strata reports has a stable string code.

Transports never invent statuses: they look the code up in one table
(``strata.transport.errors``). Each error carries a list of ``Problem``s so
that a rule file with five mistakes reports all five, each at its place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is: file, line, rule id and field."""

    message: str
    file: str | None = None
    line: int | None = None
    rule: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        if self.rule:
            where += f"rule {self.rule!r}: "
        if self.field:
            where += f"{self.field}: "
        return where + self.message

    def to_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}


class StrataError(Exception):
    """Base of every error Strata reports to a caller."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, problems: list[Problem] | tuple[Problem, ...] = ()) -> None:
        self.message = message
        self.problems = tuple(problems)
        super().__init__(message)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  {problem}" for problem in self.problems)


class InvalidArgument(StrataError):
    """The caller sent something malformed: a request, a profile, an event."""

    code = "invalid_argument"


class ProfileError(InvalidArgument):
    """A profile value does not match the profile schema."""


class RuleFileError(InvalidArgument):
    """A rule file is malformed, does not type check, or breaks the file format."""


class RuleTestFailure(StrataError):
    """A rule file is well formed but one of its own test cases fails."""

    code = "failed_precondition"


class NotFound(StrataError):
    """A named thing (ruleset, user, version) does not exist."""

    code = "not_found"


class FailedPrecondition(StrataError):
    """The request is well formed but the state does not allow it (nothing to roll back to)."""

    code = "failed_precondition"


class Conflict(StrataError):
    """A change was based on a stale revision: someone else changed the thing first.

    Read it again and decide anew; retrying blindly would undo their change.
    """

    code = "aborted"


class Unauthenticated(StrataError):
    """No credentials, or ones that are not valid (unknown, revoked, malformed)."""

    code = "unauthenticated"


class PermissionDenied(StrataError):
    """Valid credentials whose role does not allow the call (a reader token publishing)."""

    code = "permission_denied"


class EvaluationError(StrataError):
    """A rule raised while being evaluated against a well-typed profile."""

    code = "evaluation_failed"


class DeadlineExceeded(StrataError):
    """The caller's deadline passed before the decision was made; no work is wasted after it."""

    code = "deadline_exceeded"


class ResourceExhausted(StrataError):
    """A request is larger than the server accepts (body, message or batch size)."""

    code = "resource_exhausted"


class Unavailable(StrataError):
    """A dependency (the profile database) cannot be reached; retrying may succeed."""

    code = "unavailable"


ALL_ERRORS: tuple[type[StrataError], ...] = (
    StrataError,
    InvalidArgument,
    ProfileError,
    RuleFileError,
    RuleTestFailure,
    NotFound,
    FailedPrecondition,
    Conflict,
    Unauthenticated,
    PermissionDenied,
    EvaluationError,
    DeadlineExceeded,
    ResourceExhausted,
    Unavailable,
)
