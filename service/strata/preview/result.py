"""What a preview returns: the transition matrix of classes, the totals before and after, and how.

Both evaluation paths (SQL, Python) fill the same ``Tally`` per cell (count,
lowest and highest user id), so for the same snapshot they return the same
result, which is what the tests compare.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Method = Literal["sql", "python"]
ERROR_CLASS = "(error)"
"""The class of a profile the Python engine could not decide (an evaluation error)."""


@dataclass(frozen=True)
class Side:
    """One of the two rulesets compared: where it came from, and its content checksum."""

    label: str
    checksum: str


@dataclass(frozen=True)
class FallbackNote:
    """A rule that kept the preview from running in SQL: which side, which rule, why."""

    side: Literal["candidate", "baseline"]
    rule: str
    field: str
    reason: str


@dataclass(frozen=True)
class Cell:
    """Users whose class goes from ``before`` (baseline) to ``after`` (candidate).

    ``samples``, for a changed cell, are its lowest and highest user id (one if
    they are the same): cheap to find in the one grouped pass, and examples enough
    to look at. Unchanged cells have none.
    """

    before: str
    after: str
    count: int
    share: float
    samples: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Tally:
    """What the query returns per (before, after) pair."""

    before: str
    after: str
    count: int
    lowest: str
    highest: str


@dataclass(frozen=True)
class PreviewResult:
    ruleset: str
    kind: str
    candidate: Side
    baseline: Side
    as_of: dt.datetime
    method: Method
    fallbacks: tuple[FallbackNote, ...]
    database: str
    total: int
    classes: tuple[str, ...]
    """Every class either side can answer, baseline's order first, then the candidate's new ones."""
    before: dict[str, int]
    after: dict[str, int]
    cells: tuple[Cell, ...]
    elapsed_s: float

    @property
    def changed(self) -> int:
        """How many users the candidate would move to another class."""
        return sum(cell.count for cell in self.cells if cell.changed)

    @property
    def changed_share(self) -> float:
        return _share(self.changed, self.total)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the CLI's ``--json``; what a REST endpoint would return)."""
        return {
            "ruleset": self.ruleset,
            "kind": self.kind,
            "candidate": {"label": self.candidate.label, "checksum": self.candidate.checksum},
            "baseline": {"label": self.baseline.label, "checksum": self.baseline.checksum},
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "method": self.method,
            "fallbacks": [
                {"side": f.side, "rule": f.rule, "field": f.field, "reason": f.reason} for f in self.fallbacks
            ],
            "database": self.database,
            "total": self.total,
            "changed": self.changed,
            "changed_share": self.changed_share,
            "classes": list(self.classes),
            "before": self.before,
            "after": self.after,
            "cells": [
                {
                    "from": cell.before,
                    "to": cell.after,
                    "count": cell.count,
                    "share": cell.share,
                    "samples": list(cell.samples),
                }
                for cell in self.cells
            ],
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def tabulate(
    tallies: Iterable[Tally], baseline_classes: list[str], candidate_classes: list[str]
) -> dict[str, Any]:
    """Cells in class order and the totals per class, from the per-pair tallies.

    Returns the keyword arguments of ``PreviewResult`` that depend only on the
    counts: ``total``, ``classes``, ``before``, ``after``, ``cells``.
    """
    rows = list(tallies)
    seen = [name for row in rows for name in (row.before, row.after)]
    classes = tuple(dict.fromkeys([*baseline_classes, *candidate_classes, *sorted(set(seen))]))
    order = {name: index for index, name in enumerate(classes)}
    total = sum(row.count for row in rows)
    before = dict.fromkeys(baseline_classes, 0)
    after = dict.fromkeys(candidate_classes, 0)
    for row in rows:
        before[row.before] = before.get(row.before, 0) + row.count
        after[row.after] = after.get(row.after, 0) + row.count
    cells = tuple(
        Cell(
            row.before,
            row.after,
            row.count,
            _share(row.count, total),
            tuple(dict.fromkeys([row.lowest, row.highest])) if row.before != row.after else (),
        )
        for row in sorted(rows, key=lambda row: (order[row.before], order[row.after]))
    )
    return {"total": total, "classes": classes, "before": before, "after": after, "cells": cells}
