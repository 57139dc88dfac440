"""Segment: optional 1..5 scores, then ordered segments (first match), plus tags (all matches)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from strata.engine.compiler import FLOAT_EXACT_INTEGERS, Compared
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

    ``thresholds``: the spec's, each as ``exact`` makes it (a Decimal or an int compares with a
    Decimal or an int much faster than with a float, which it converts every time).
    """
    if value is None:
        return spec.missing
    thresholds = thresholds or spec.thresholds
    if spec.better == "higher":
        return 1 + bisect.bisect_right(thresholds, value)  # thresholds the value reaches
    return 1 + len(thresholds) - bisect.bisect_left(thresholds, value)  # those it is within


def exact(threshold: float) -> int | Decimal:
    """A threshold as the value it is compared with: an int where integral (an int compares with an
    int, or with rule-engine's Decimal, fastest), else its exact Decimal."""
    return int(threshold) if float(threshold).is_integer() else Decimal(threshold)


def comparison(thresholds: Sequence[int | Decimal]) -> Compared:
    """How a score's value may be given to be compared with its ``exact`` thresholds: a finite float
    as it is where every threshold is an int a float holds exactly (see ``Compared``)."""
    if all(threshold.__class__ is int and abs(threshold) <= FLOAT_EXACT_INTEGERS for threshold in thresholds):
        return "integers"
    return "numbers"


def scores_type(names: list[str]) -> Any:
    return object_type("scores", {name: DataType.FLOAT for name in names})


class Score(NamedTuple):
    name: str
    rule: str
    spec: ScoreSpec
    value: Expression
    thresholds: list[int | Decimal]
    reasons: dict[int, str]
    bare_hits: dict[int, RuleHit]


class SegmentRuleset(CompiledRuleset[SegmentSpec]):
    kind = "segment"

    def __init__(self, spec: SegmentSpec, checksum: str, compiler: Compiler) -> None:
        super().__init__(spec, checksum, compiler)
        #: Each score that compiled: its name, rule id, spec, value, thresholds (``exact``), and for
        #: each score it can give, its reason and its hit without the facts' values (built once).
        self.scores: list[Score] = []
        for name, score_spec in spec.scores.items():
            rule = f"score.{name}"
            thresholds = [exact(threshold) for threshold in score_spec.thresholds]
            make = functools.partial(compile_optional_number, compared=comparison(thresholds))
            value = compiler.expression(score_spec.value, f"scores.{name}.value", rule, make)
            if value:
                reasons = {
                    given: score_spec.reason or f"{name} scored {given} by thresholds {score_spec.thresholds}"
                    for given in range(1, 6)
                }
                self.scores.append(
                    Score(
                        name,
                        rule,
                        score_spec,
                        value,
                        thresholds,
                        reasons,
                        {given: RuleHit(rule, reason) for given, reason in reasons.items()},
                    )
                )
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
        skip_facts = facts.skip_facts
        for name, rule, spec, value_expr, thresholds, reasons, bare_hits in self.scores:
            try:
                value = value_expr.evaluate(facts)
            except ExpressionError as exc:
                raise failure(self.name, rule, "value", exc) from None
            scores[name] = given = score(spec, value, thresholds)
            hits.append(
                bare_hits[given] if skip_facts else read_facts(rule, reasons[given], facts, value_expr)
            )
        return scores, hits

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> SegmentDecision:
        if facts.answers is None:  # nothing to share: ``memoized`` inlined
            segment, scores, tags, hits = self._classify(facts)
        else:
            segment, scores, tags, hits = self.memoized(facts, self._classify)  # ``classify``, one call fewer
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
