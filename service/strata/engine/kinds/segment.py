"""Segment: optional 1..5 scores, then ordered segments (first match), plus tags (all matches)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from strata.engine.decision import RuleHit, SegmentDecision
from strata.engine.expressions import (
    Expression,
    ExpressionError,
    compile_optional_number,
    object_type,
)
from strata.engine.facts import Facts
from strata.engine.ruleset import (
    AllMatches,
    CompiledRuleset,
    Compiler,
    DataType,
    FirstMatch,
    failure,
    read_facts,
)
from strata.engine.spec import ScoreSpec, SegmentSpec


def score(spec: ScoreSpec, value: Decimal | float | None, thresholds: Sequence[Decimal | float] = ()) -> int:
    """The 1..5 score of a value under four ascending thresholds.

    ``thresholds``: the spec's, as Decimals (exact, and a Decimal compares with a
    Decimal much faster than with a float, which it converts every time).
    """
    if value is None:
        return spec.missing
    thresholds = thresholds or spec.thresholds
    if spec.better == "higher":
        return 1 + bisect.bisect_right(thresholds, value)  # thresholds the value reaches
    return 1 + len(thresholds) - bisect.bisect_left(thresholds, value)  # those it is within


def scores_type(names: list[str]) -> Any:
    return object_type("scores", {name: DataType.FLOAT for name in names})


class SegmentRuleset(CompiledRuleset[SegmentSpec]):
    kind = "segment"

    def __init__(self, spec: SegmentSpec, checksum: str, compiler: Compiler) -> None:
        super().__init__(spec, checksum, compiler)
        self.scores: dict[str, tuple[ScoreSpec, Expression]] = {}
        self._thresholds: dict[str, list[Decimal]] = {}
        self._score_rules = {name: f"score.{name}" for name in spec.scores}
        self._reasons = {  # each score's reason for each value it can take, written once
            name: {
                value: score_spec.reason or f"{name} scored {value} by thresholds {score_spec.thresholds}"
                for value in range(1, 6)
            }
            for name, score_spec in spec.scores.items()
        }
        for name, score_spec in spec.scores.items():
            value = compiler.expression(
                score_spec.value, f"scores.{name}.value", f"score.{name}", compile_optional_number
            )
            if value:
                self.scores[name] = (score_spec, value)
                self._thresholds[name] = [Decimal(threshold) for threshold in score_spec.thresholds]
        compiler.types["scores"] = scores_type(list(spec.scores))
        self.segments: FirstMatch[str] = FirstMatch(
            self.name, compiler.choices("segments", spec.segments, lambda rule: rule.result)
        )
        self.tags: AllMatches[str] = AllMatches(
            self.name, compiler.choices("tags", spec.tags, lambda rule: rule.result)
        )
        self._default = (
            spec.default.segment,
            RuleHit("default", spec.default.reason),
        )  # built once: immutable
        self._reads_scores = any("scores" in c.when.reads for c in (*self.segments, *self.tags))

    def compute_scores(self, facts: Facts) -> tuple[dict[str, int], list[RuleHit]]:
        scores: dict[str, int] = {}
        hits = []
        for name, (spec, value_expr) in self.scores.items():
            rule = self._score_rules[name]
            try:
                value = value_expr.evaluate(facts)
            except ExpressionError as exc:
                raise failure(self.name, rule, "value", exc) from None
            scores[name] = given = score(spec, value, self._thresholds[name])
            hits.append(read_facts(rule, self._reasons[name][given], facts, value_expr))
        return scores, hits

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> SegmentDecision:
        segment, scores, tags, hits = self.classify(facts)
        return SegmentDecision(self.name, self.checksum, hits, segment, scores, tags)  # by position: quickest

    def classify(self, facts: Facts) -> tuple[str, dict[str, int], tuple[str, ...], tuple[RuleHit, ...]]:
        """Segment, scores, tags and the rules that gave them (what an intervention building on this needs)."""
        return self.memoized(facts, self._classify)

    def _classify(self, facts: Facts) -> tuple[str, dict[str, int], tuple[str, ...], tuple[RuleHit, ...]]:
        scores, hits = self.compute_scores(facts) if self.scores else ({}, [])
        if self._reads_scores:
            facts = facts.with_extra(scores=scores)
        segment, why = self.segments.first(facts, self._default)
        hits.append(why)
        tags: tuple[str, ...] = ()
        if tagged := self.tags.all(facts):
            hits += [tag_hit for _, tag_hit in tagged]
            tags = tuple(dict.fromkeys([choice.result for choice, _ in tagged]))
        return segment, scores, tags, tuple(hits)

    def outcomes(self) -> list[str]:
        return list(dict.fromkeys([*(c.result for c in self.segments), self.spec.default.segment]))
