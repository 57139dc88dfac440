"""Intervention: every matching action, ranked by priority, cooldowns honoured, top N.

An intervention ruleset may build on a lifecycle and a segment ruleset: their
answers become the facts ``lifecycle.stage``, ``segment.name``,
``segment.scores`` and ``segment.tags``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from strata.engine.decision import Action, InterventionDecision, RuleHit, SkippedAction
from strata.engine.expressions import object_type
from strata.engine.facts import Facts
from strata.engine.kinds.lifecycle import LifecycleRuleset
from strata.engine.kinds.segment import SegmentRuleset, scores_type
from strata.engine.ruleset import AllMatches, Choice, CompiledRuleset, Compiler, DataType
from strata.engine.spec import ActionRule, InterventionSpec, duration_seconds


class InterventionRuleset(CompiledRuleset[InterventionSpec]):
    kind = "intervention"

    def __init__(
        self,
        spec: InterventionSpec,
        checksum: str,
        compiler: Compiler,
        dependencies: Mapping[str, CompiledRuleset[Any]],
    ) -> None:
        super().__init__(spec, checksum, compiler)
        self.lifecycle: LifecycleRuleset | None = None
        self.segment: SegmentRuleset | None = None
        if spec.uses.lifecycle:
            dependency = dependencies.get(spec.uses.lifecycle)
            if isinstance(dependency, LifecycleRuleset):
                self.lifecycle = dependency
                compiler.types["lifecycle"] = object_type("lifecycle", {"stage": DataType.STRING})
            else:
                compiler.problem(
                    f"no lifecycle ruleset named {spec.uses.lifecycle!r} is loaded", "uses.lifecycle"
                )
        if spec.uses.segment:
            dependency = dependencies.get(spec.uses.segment)
            if isinstance(dependency, SegmentRuleset):
                self.segment = dependency
                compiler.types["segment"] = object_type(
                    "segment",
                    {
                        "name": DataType.STRING,
                        "scores": scores_type(list(dependency.spec.scores)),
                        "tags": DataType.ARRAY(DataType.STRING),
                    },
                )
            else:
                compiler.problem(f"no segment ruleset named {spec.uses.segment!r} is loaded", "uses.segment")
        self.actions: AllMatches[ActionRule] = AllMatches(
            self.name, compiler.choices("actions", spec.actions, lambda rule: rule)
        )
        # what an action is and how long it rests depend on the file only: built once, shared (immutable)
        self._sent = {
            choice.id: (
                Action(
                    id=choice.id,
                    channel=choice.result.channel,
                    template=choice.result.template,
                    offer=choice.result.offer,
                    priority=choice.result.priority,
                    reason=choice.reason,
                    cooldown_seconds=duration_seconds(choice.result.cooldown),
                ),
                dt.timedelta(seconds=duration_seconds(choice.result.cooldown)),
            )
            for choice in self.actions
        }

    def _with_dependencies(self, facts: Facts) -> tuple[Facts, list[RuleHit], str | None, str | None]:
        extra: dict[str, Any] = {}
        hits: list[RuleHit] = []
        stage = segment = None
        if self.lifecycle:
            stage, why = self.lifecycle.classify(facts.rebase(self.lifecycle.constants))
            extra["lifecycle"] = {"stage": stage}
            hits.append(why.renamed(f"{self.lifecycle.name}/{why.rule}"))
        if self.segment:
            segment, scores, tags, segment_hits = self.segment.classify(facts.rebase(self.segment.constants))
            extra["segment"] = {"name": segment, "scores": scores, "tags": tags}
            hits += [h.renamed(f"{self.segment.name}/{h.rule}") for h in segment_hits]
        return facts.with_extra(**extra), hits, stage, segment

    def decide(self, facts: Facts, event: Mapping[str, Any] | None = None) -> InterventionDecision:
        facts, context_hits, stage, segment = self._with_dependencies(facts)
        last_sent: Mapping[str, dt.datetime] = facts.profile.get("last_sent") or {}
        ready: list[tuple[Choice[ActionRule], RuleHit]] = []
        skipped: list[SkippedAction] = []
        for choice, why in self.actions.all(facts):
            cooldown = self._sent[choice.id][1]
            sent = last_sent.get(choice.id)
            if sent is not None and sent + cooldown > facts.clock.as_of:
                skipped.append(SkippedAction(choice.id, "cooldown", sent + cooldown))
            else:
                ready.append((choice, why))
        ready.sort(key=lambda pair: -pair[0].result.priority)  # stable: file order breaks ties
        chosen = ready[: self.spec.max_actions]
        skipped += [
            SkippedAction(choice.id, "beyond_max_actions") for choice, _ in ready[self.spec.max_actions :]
        ]
        return InterventionDecision(
            ruleset=self.name,
            checksum=self.checksum,
            explanation=(*context_hits, *(why for _, why in chosen)),
            actions=tuple(self._sent[choice.id][0] for choice, _ in chosen),
            skipped=tuple(skipped),
            stage=stage,
            segment=segment,
        )
