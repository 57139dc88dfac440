"""HTML the templates cannot make themselves: highlighted lines, a side-by-side diff, the heatmap.

All of it is rendered on the server (Pygments, ``difflib``), so the pages
need no JavaScript to show a file, a diff or a preview.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

from strata.errors import Problem, StrataError
from strata.preview import PreviewResult

#: ``static/pygments.css`` is ``HtmlFormatter(style="friendly").get_style_defs(".code")``.
_FORMATTER = HtmlFormatter(nowrap=True)
HEAT_LEVELS = 5


def code_lines(content: str) -> list[Markup]:
    """``content`` highlighted as YAML, one piece of HTML per line (Pygments closes its spans per line)."""
    if not content:
        return []
    return [Markup(line) for line in highlight(content, YamlLexer(), _FORMATTER).split("\n")][
        : len(content.splitlines())
    ]


def problems_by_line(error: StrataError, lines: int) -> tuple[dict[int, list[Problem]], list[Problem]]:
    """An error's problems under the line they are at, and those at no line of the ``lines`` shown
    (YAML reports a missing end of file one line past the last)."""
    located: dict[int, list[Problem]] = defaultdict(list)
    unplaced = []
    for problem in error.problems:
        if problem.line and problem.line <= lines:
            located[problem.line].append(problem)
        else:
            unplaced.append(problem)
    return dict(located), unplaced


def side_by_side(old: str, new: str, old_label: str, new_label: str) -> Markup:
    """Two versions side by side, changed lines marked (``difflib``'s table; it escapes the text)."""
    table = difflib.HtmlDiff(tabsize=2, wrapcolumn=60).make_table(
        old.splitlines(), new.splitlines(), old_label, new_label, context=True, numlines=3
    )
    return Markup(table)


@dataclass(frozen=True)
class HeatCell:
    count: int
    share: float
    changed: bool
    level: int  # 0 (none) .. HEAT_LEVELS, by share of all users: the cell's colour


@dataclass(frozen=True)
class Heatmap:
    """The transition matrix: baseline classes as rows, candidate classes as columns."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], HeatCell]


def heatmap(result: PreviewResult) -> Heatmap:
    """Only classes someone is in, before (rows) or after (columns); shares mapped to colour levels."""
    rows = tuple(name for name in result.classes if result.before.get(name))
    columns = tuple(name for name in result.classes if result.after.get(name))
    top = max((cell.share for cell in result.cells), default=0.0) or 1.0
    cells = {
        (cell.before, cell.after): HeatCell(
            cell.count, cell.share, cell.changed, max(1, round(HEAT_LEVELS * cell.share / top))
        )
        for cell in result.cells
    }
    return Heatmap(rows, columns, cells)
