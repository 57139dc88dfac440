"""Traffic splits: which version of a ruleset a user gets, by GrowthBook's v2 hashing.

A split is weighted versions, a seed and a coverage. A user's bucket is
``fnv1a32(str(fnv1a32(seed + user_id))) % 10000 / 10000``, the ranges are
GrowthBook's ``getBucketRanges`` and the arm is ``chooseVariation``, all
exactly as the ``growthbook`` package computes them, so a GrowthBook
experiment with the same seed, weights and coverage puts every user in the
same arm, and changing the weights moves as few users as GrowthBook's ranges
do. Users outside the coverage get no arm (the active version answers).

Pure Python: no database, no transport.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from strata.errors import InvalidArgument, Problem

#: GrowthBook replaces weight vectors whose sum falls outside this range; Strata refuses them.
WEIGHT_SUM = (0.99, 1.01)
MAX_ARMS = 20
MAX_SEED_CHARS = 200
_UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"  # native order, read as "H" units


def fnv1a32(text: str) -> int:
    """FNV-1a, 32 bits, over UTF-16 code units (GrowthBook's, like the JS SDK's ``charCodeAt``).

    On the request path of splits and shadows, so: an ASCII id's code units
    are its bytes (most ids), others are read as native 16-bit units.
    """
    value = 0x811C9DC5
    units = text.encode() if text.isascii() else memoryview(text.encode(_UTF16, "surrogatepass")).cast("H")
    for unit in units:
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    return value


def bucket(seed: str, user_id: str) -> float:
    """GrowthBook's hash version 2: a number in [0, 1) with four decimals."""
    return (fnv1a32(str(fnv1a32(seed + user_id))) % 10000) / 10000


def bucket_ranges(weights: tuple[float, ...], coverage: float) -> tuple[tuple[float, float], ...]:
    """GrowthBook's ``getBucketRanges``: each arm's range starts where its weight starts."""
    coverage = min(max(coverage, 0.0), 1.0)
    ranges, cumulative = [], 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return tuple(ranges)


def choose_arm(n: float, ranges: tuple[tuple[float, float], ...]) -> int | None:
    """GrowthBook's ``chooseVariation``; None where it says -1 (outside the coverage)."""
    for index, (low, high) in enumerate(ranges):
        if low <= n < high:
            return index
    return None


@dataclass(frozen=True)
class Split:
    """Weighted versions of one ruleset; arm ``i`` is ``versions[i]``."""

    versions: tuple[int, ...]
    weights: tuple[float, ...]
    seed: str
    coverage: float = 1.0
    #: GrowthBook's bucket ranges of the arms, from the weights and coverage.
    ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if not 2 <= len(self.versions) <= MAX_ARMS or len(self.weights) != len(self.versions):
            # GrowthBook skips an experiment of fewer than two variations
            problems.append(Problem(f"2 to {MAX_ARMS} arms, one weight each", field="versions"))
        if len(set(self.versions)) != len(self.versions) or any(v < 1 for v in self.versions):
            problems.append(Problem("distinct version numbers from 1", field="versions"))
        if not all(math.isfinite(w) and w >= 0 for w in self.weights) or not (
            WEIGHT_SUM[0] <= sum(self.weights) <= WEIGHT_SUM[1]
        ):
            problems.append(Problem("weights are at least 0 and add up to 1", field="versions"))
        if not self.seed or len(self.seed) > MAX_SEED_CHARS:
            problems.append(Problem(f"1 to {MAX_SEED_CHARS} characters", field="seed"))
        if not (math.isfinite(self.coverage) and 0 <= self.coverage <= 1):
            problems.append(Problem("between 0 and 1", field="coverage"))
        if problems:
            raise InvalidArgument("invalid traffic split", problems)
        object.__setattr__(self, "ranges", bucket_ranges(self.weights, self.coverage))

    @classmethod
    def parse(cls, arms: str, seed: str, coverage: float = 1.0) -> Split:
        """From ``3:0.5,4:0.5`` (version:weight, ...)."""
        versions, weights = [], []
        try:
            for arm in arms.split(","):
                version, _, weight = arm.partition(":")
                versions.append(int(version))
                weights.append(float(weight))
        except ValueError:
            raise InvalidArgument(
                f"invalid arms {arms!r}",
                [Problem("expected VERSION:WEIGHT,... such as 3:0.5,4:0.5", field="versions")],
            ) from None
        return cls(tuple(versions), tuple(weights), seed, coverage)

    @property
    def arms(self) -> str:
        """The arms as written: ``3:0.5,4:0.5``."""
        return ",".join(
            f"{version}:{weight!r}" for version, weight in zip(self.versions, self.weights, strict=True)
        )

    def arm(self, user_id: str) -> int | None:
        """The user's arm, or None outside the coverage (or with no user id)."""
        if not user_id:
            return None
        return choose_arm(bucket(self.seed, user_id), self.ranges)
