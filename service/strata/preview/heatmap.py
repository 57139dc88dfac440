"""The transition matrix as a heatmap image: where the users go, at a glance.

Rows are the baseline's classes, columns the candidate's; each cell shows how
many users move from its row to its column and is shaded by that count on a
log scale (one big unchanged class must not wash out a small move). Moves are
outlined, so the off-diagonal cells that a change is about stand out.

matplotlib is an optional dependency (``pip install 'strata[plot]'``): the
service never draws, only the CLI does on request.
"""

from __future__ import annotations

import math
from pathlib import Path

from strata.errors import FailedPrecondition, Problem
from strata.preview.result import PreviewResult


def draw_heatmap(result: PreviewResult, path: Path) -> None:
    """Write the matrix of ``result`` to ``path`` as a PNG image."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        from matplotlib import pyplot
        from matplotlib.colors import LogNorm
        from matplotlib.patches import Rectangle
    except ImportError:
        raise FailedPrecondition(
            "drawing a heatmap needs matplotlib", [Problem("pip install 'strata[plot]'", field="plot")]
        ) from None
    rows = [name for name in result.classes if result.before.get(name)]
    columns = [name for name in result.classes if result.after.get(name)]
    counts = [[0] * len(columns) for _ in rows]
    for cell in result.cells:
        counts[rows.index(cell.before)][columns.index(cell.after)] = cell.count
    figure, axes = pyplot.subplots(figsize=(1.6 + 1.1 * len(columns), 1.4 + 0.7 * len(rows)))
    shown = [[count if count else float("nan") for count in row] for row in counts]
    image = axes.imshow(shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(result.total, 1)), aspect="auto")
    figure.colorbar(image, ax=axes, label="users (log scale)")
    axes.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel(f"candidate: {result.candidate.label}")
    axes.set_ylabel(f"baseline: {result.baseline.label}")
    moved = f"{result.changed:,} of {result.total:,} users change class"
    axes.set_title(f"{result.ruleset} at {result.as_of:%Y-%m-%d %H:%M} UTC: {moved}", fontsize=10)
    for row, before in enumerate(rows):
        for column, after in enumerate(columns):
            count = counts[row][column]
            if count:
                shade = math.log(count) / math.log(max(result.total, 2))  # where LogNorm puts it, 0..1
                color = "black" if shade > 0.6 else "white"  # viridis turns yellow at the top
                axes.text(column, row, f"{count:,}", ha="center", va="center", fontsize=8, color=color)
            if count and before != after:
                axes.add_patch(
                    Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
                )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
