"""Impact previews: how a candidate lifecycle or segment ruleset would reclassify the whole population.

``run_preview`` is the entry point (the CLI, and any endpoint, call it):
``sqlcompile`` turns rule expressions into SQL, ``sqlfacts`` the derived facts,
``classify`` a ruleset into one ``CASE``, ``dialects`` holds what differs
between Postgres and SQLite, ``runner`` runs the one grouped query (or the
Python fallback) in a read-only snapshot, ``result`` is what comes back and
``heatmap`` draws it.
"""

from strata.preview.result import Cell, PreviewResult
from strata.preview.runner import Version, run_preview

__all__ = ["Cell", "PreviewResult", "Version", "run_preview"]
