"""The decision engine: pure, no I/O, no framework imports.

A ruleset spec and a profile schema go in, a compiled ruleset comes out; a
compiled ruleset plus a profile and a clock give a decision with its
explanation. Reading files, databases and networks is someone else's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strata.engine.kinds.incentive import IncentiveRuleset
from strata.engine.kinds.intervention import InterventionRuleset
from strata.engine.kinds.lifecycle import LifecycleRuleset
from strata.engine.kinds.segment import SegmentRuleset
from strata.engine.ruleset import CompiledRuleset, Compiler
from strata.engine.schema import ProfileSchema
from strata.engine.spec import IncentiveSpec, InterventionSpec, LifecycleSpec, RulesetBase, SegmentSpec

__all__ = ["CompiledRuleset", "ProfileSchema", "build_ruleset"]


def build_ruleset(
    spec: RulesetBase,
    schema: ProfileSchema,
    checksum: str,
    dependencies: Mapping[str, CompiledRuleset[Any]] | None = None,
) -> CompiledRuleset[Any]:
    """Compile a validated spec; raises ``RuleFileError`` listing every problem."""
    compiler = Compiler(schema, spec.constants)
    ruleset: CompiledRuleset[Any]
    if isinstance(spec, LifecycleSpec):
        ruleset = LifecycleRuleset(spec, checksum, compiler)
    elif isinstance(spec, SegmentSpec):
        ruleset = SegmentRuleset(spec, checksum, compiler)
    elif isinstance(spec, IncentiveSpec):
        ruleset = IncentiveRuleset(spec, checksum, compiler)
    elif isinstance(spec, InterventionSpec):
        ruleset = InterventionRuleset(spec, checksum, compiler, dependencies or {})
    else:
        raise TypeError(f"unknown ruleset spec {type(spec).__name__}")
    compiler.finish(spec.name)
    return ruleset
