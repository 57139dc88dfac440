"""How big a rule may be: every limit on rule files and expressions, in one place.

Rule files come from people, and rule-engine will parse, build and evaluate
whatever it is given: a 10 MB string literal takes seconds and gigabytes, 500
nested ``and`` raise ``RecursionError`` and ``$range(1e7)`` inside a
comprehension runs for minutes. Strata bounds every one of these by size, not
by time: the same file gets the same verdict on a quiet laptop and on a loaded
server, and a publish cannot be refused because the machine was busy.

The bounds make the cost of publishing a file linear in its size: a file is
at most ``file_bytes`` long, an expression (a string in the file) is checked for length before it is
parsed and for depth, node count, literal sizes and iteration nesting before
rule-engine builds it (``strata.engine.parsing``), and the total work of a
file is capped by ``file_nodes``. What depends on data (the length of a
``$range``) is enforced when evaluated, in the interpreter and in compiled
code alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rule_engine import errors as re_errors
from rule_engine import types as re_types


@dataclass(frozen=True)
class Limits:
    """The maxima; ``LIMITS`` holds the ones Strata uses."""

    file_bytes: int = 1_000_000
    """A rule file (YAML), in UTF-8 bytes."""
    expression_chars: int = 4_000
    """One expression's text (a ``when``, a score), checked before it is parsed."""
    expression_nodes: int = 1_000
    """Syntax tree nodes in one expression."""
    file_nodes: int = 10_000
    """Syntax tree nodes in all the expressions of one file: bounds the time and memory of a publish."""
    depth: int = 100
    """Nesting of one expression's syntax tree (``a and b and c`` is 3 deep). rule-engine recurses
    per level, in Python, and fails near 490; 100 keeps every path (parse, type check, compile,
    interpreter) far from the interpreter's recursion limit, whatever thread runs it."""
    literal_chars: int = 1_000
    """A string or bytes literal (a regex is one)."""
    literal_items: int = 500
    """The members of an array, set or mapping literal (each is a syntax tree node)."""
    iteration_nesting: int = 1
    """Loops (comprehensions, ``$range``, ``$map``, ``$filter``) inside a comprehension's result or
    condition (1: none inside another). Each level multiplies the work by the length of what it iterates."""
    test_cases: int = 200
    """Test cases embedded in a file: each is a decision evaluated at publish."""
    range_items: int = 1_000
    """The length of a ``$range``, checked when it is evaluated."""


LIMITS = Limits()


class Refused(re_errors.EngineError):  # type: ignore[misc]
    """An expression Strata does not accept; raised inside rule-engine so it is handled like its errors."""


class LimitExceeded(Refused):
    """A rule is larger than a limit allows."""

    def __init__(self, what: str, value: int, maximum: int) -> None:
        self.what, self.value, self.maximum = what, value, maximum
        super().__init__(exceeded(what, value, maximum))


def quoted(text: str, limit: int = 80) -> str:
    """Text a user wrote, quoted in an error: whole if short (a refused one may be 10,000 characters)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def exceeded(what: str, value: int, maximum: int) -> str:
    """How every limit is reported: what, its value, the maximum."""
    return f"{what} is {value}, the maximum is {maximum}"


def range_length(*arguments: int) -> int:
    """``len(range(*arguments))`` at any size (``len`` overflows past ``sys.maxsize``)."""
    numbers = range(*arguments)
    toward = 1 if numbers.step > 0 else -1
    return max(0, (numbers.stop - numbers.start + numbers.step - toward) // numbers.step)


def bounded_range(start: Any, stop: Any = None, step: Any = None) -> list[int]:
    """rule-engine's ``$range`` with its length checked before anything is built."""
    arguments = [value for value in (start, stop, step) if value is not None]
    for index, value in enumerate(arguments, 1):
        if not re_types.is_integer_number(value):
            raise re_errors.FunctionCallError(f"argument #{index} of $range must be an integer number")
    numbers = [int(value) for value in arguments]
    length = range_length(*numbers)
    if length > LIMITS.range_items:
        # a builtin's own error class: rule-engine replaces any other's message with "function call failed"
        raise re_errors.FunctionCallError(exceeded("the length of $range", length, LIMITS.range_items))
    return list(range(*numbers))
