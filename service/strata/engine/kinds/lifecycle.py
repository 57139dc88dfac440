"""Lifecycle: ordered stages, the first whose condition holds wins, else the default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strata.engine.decision import LifecycleDecision, RuleHit
from strata.engine.facts import Facts
from strata.engine.ruleset import CompiledRuleset, Compiler, FirstMatch
from strata.engine.spec import LifecycleSpec


class LifecycleRuleset(CompiledRuleset[LifecycleSpec]):
    kind = "lifecycle"

    def __init__(self, spec: LifecycleSpec, checksum: str, compiler: Compiler) -> None:
        super().__init__(spec, checksum, compiler)
        self.stages: FirstMatch[str] = FirstMatch(
            self.name, compiler.choices("stages", spec.stages, lambda rule: rule.result)
        )
        self._default = (spec.default.stage, RuleHit("default", spec.default.reason))  # built once: immutable

    def classify(self, facts: Facts) -> tuple[str, RuleHit]:
        """The stage and the rule that gave it (what an intervention building on this needs)."""
        return self.memoized(facts, self._classify)

    def _classify(self, facts: Facts) -> tuple[str, RuleHit]:
        return self.stages.first(facts, self._default)

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> LifecycleDecision:
        stage, why = self.memoized(facts, self._classify)  # ``classify``, one call fewer
        return LifecycleDecision(self.name, self.checksum, (why,), stage)  # by position: the quickest call

    def outcomes(self) -> list[str]:
        """Every stage this ruleset can answer, in order."""
        return list(dict.fromkeys([*(c.result for c in self.stages), self.spec.default.stage]))
