"""Lifecycle: ordered stages, the first whose condition holds wins, else the default."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from strata.engine.decision import LifecycleDecision, RuleHit
from strata.engine.expressions import Expression
from strata.engine.facts import Facts
from strata.engine.ruleset import CompiledRuleset, Compiler, FirstMatch
from strata.engine.spec import LifecycleSpec


class LifecycleRuleset(CompiledRuleset[LifecycleSpec]):
    kind = "lifecycle"

    def __init__(self, spec: LifecycleSpec, checksum: str, compiler: Compiler) -> None:
        super().__init__(spec, checksum, compiler)
        #: The first stage that holds gives the finished decision, built in the compiled chain:
        #: a decision is one call of ours (``decide``) and the chain's, nothing in between.
        self.stages: FirstMatch[str] = FirstMatch(
            self.name,
            compiler.choices("stages", spec.stages, lambda rule: rule.result),
            functools.partial(LifecycleDecision, self.name, self.checksum),
        )
        default_hit = RuleHit("default", spec.default.reason)
        self._default = LifecycleDecision(self.name, self.checksum, (default_hit,), spec.default.stage)
        """Built once: immutable."""

    def classify(self, facts: Facts) -> tuple[str, RuleHit]:
        """The stage and the rule that gave it (what an intervention building on this needs)."""
        decision = self.memoized(facts, self._decide)
        return decision.stage, decision.explanation[0]

    def _decide(self, facts: Facts) -> LifecycleDecision:
        decision: LifecycleDecision = self.stages.first(facts, self._default)
        return decision

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> LifecycleDecision:
        stages = self.stages
        if facts.answers is None and stages.bare is not None and Expression.use_compiled:
            # nothing to share and the chain compiled: ``memoized`` and ``FirstMatch.first`` inlined,
            # so a decision is this call and the chain's (3% fewer instructions than through them)
            found = (stages.bare if facts.skip_facts else stages.explained)(facts)
            return self._default if found is None else found
        return self.memoized(facts, self._decide)

    def outcomes(self) -> list[str]:
        """Every stage this ruleset can answer, in order."""
        return list(dict.fromkeys([*(c.result for c in self.stages), self.spec.default.stage]))
