"""Shadow evaluation: a candidate version of a ruleset judged beside the one that answers.

A shadow is a candidate version, the share of requests it runs for and a
seed. Which requests is decided by GrowthBook's v2 hash of the user id (the
same bucket as a split, with the shadow's own seed), so a user is always in
or always out of the sample and a difference seen once can be seen again.
The candidate's answer is never returned: only whether it agrees with the
answering version's (the outcome: stage, segment, points, actions, ...; not
the explanation, whose rule reasons a candidate may well reword).

Pure Python: no database, no transport.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from strata.errors import InvalidArgument, Problem
from strata.splits import MAX_SEED_CHARS, bucket

#: Fields every decision has that say how it was reached, not what it is.
_PROVENANCE = frozenset({"ruleset", "checksum", "explanation"})


@dataclass(frozen=True)
class Shadow:
    """Run ``version`` beside the answering version for ``share`` of the users (0..1)."""

    version: int
    share: float
    seed: str

    def __post_init__(self) -> None:
        problems = []
        if self.version < 1:
            problems.append(Problem("a version number from 1", field="version"))
        if not (math.isfinite(self.share) and 0 < self.share <= 1):
            problems.append(Problem("a share of the requests, more than 0 and at most 1", field="share"))
        if not self.seed or len(self.seed) > MAX_SEED_CHARS:
            problems.append(Problem(f"1 to {MAX_SEED_CHARS} characters", field="seed"))
        if problems:
            raise InvalidArgument("invalid shadow", problems)

    def sampled(self, user_id: str) -> bool:
        """Whether this user's requests run the candidate (all do at share 1; none without a user id)."""
        if self.share >= 1:
            return True
        return bool(user_id) and bucket(self.seed, user_id) < self.share

    @property
    def detail(self) -> str:
        """How the audit log and the CLI show it: ``version 4 share=0.1 seed=s``."""
        return f"version {self.version} share={self.share!r} seed={self.seed}"


def default_seed(name: str) -> str:
    """A shadow's seed when none is given: not the split's default (the name), so the samples differ."""
    return f"shadow:{name}"


def outcome(decision: dict[str, Any]) -> dict[str, Any]:
    """What a decision decided (a ``Decision.to_dict()`` without its provenance): what shadows compare."""
    return {key: value for key, value in decision.items() if key not in _PROVENANCE}
