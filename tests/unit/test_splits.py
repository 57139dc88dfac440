"""Traffic splits assign users exactly as GrowthBook does, and in the weights' shares."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from growthbook import Experiment, GrowthBook
from growthbook.core import chooseVariation, gbhash, getBucketRanges

from strata.errors import InvalidArgument
from strata.splits import Split, bucket, fnv1a32

USERS = [f"user-{index}" for index in range(2000)] + ["", "ü-ñ", "日本語", "😀-emoji", "a" * 300, "42"]
SPLITS = [
    Split((3, 4), (0.5, 0.5), "lifecycle.duolingo"),
    Split((1, 2, 5), (0.2, 0.3, 0.5), "exp-1", 0.7),
    Split((7, 8), (0.75, 0.25), "canary", 0.25),
    Split((2, 9), (0.9, 0.1), "日本-seed", 1.0),
    Split((1, 2, 3, 4), (0.25, 0.25, 0.25, 0.25), "s", 0.0),
]


def growthbook_arm(split: Split, user_id: str) -> int | None:
    """GrowthBook's own assignment for an experiment with the split's seed, weights and coverage."""
    experiment = Experiment(
        key="any-key",
        variations=list(split.versions),
        weights=list(split.weights),
        coverage=split.coverage,
        seed=split.seed,
        hashVersion=2,
    )
    result = GrowthBook(attributes={"id": user_id}).run(experiment)
    return result.variationId if result.inExperiment else None


def test_fnv1a32_and_the_v2_hash_match_growthbook() -> None:
    assert fnv1a32("") == 0x811C9DC5 and fnv1a32("a") == 0xE40C292C  # the FNV-1a test vectors
    for seed in ("", "seed", "ñ", "😀"):
        for user_id in USERS[:200] + USERS[-6:]:
            assert bucket(seed, user_id) == gbhash(seed, user_id, 2)


@pytest.mark.parametrize("split", SPLITS, ids=lambda split: f"{split.arms}@{split.coverage}")
def test_every_users_arm_is_growthbooks_assignment(split: Split) -> None:
    assert split.ranges == tuple(getBucketRanges(len(split.versions), split.coverage, list(split.weights)))
    for user_id in USERS[:300] + USERS[-6:]:
        assert split.arm(user_id) == growthbook_arm(split, user_id), user_id
    for user_id in USERS:
        expected = (
            chooseVariation(gbhash(split.seed, user_id, 2) or 0.0, list(split.ranges)) if user_id else -1
        )
        assert split.arm(user_id) == (None if expected == -1 else expected), user_id


def test_shares_over_100000_users_are_within_sampling_error_of_the_weights() -> None:
    users = 100_000
    for split in (Split((3, 4), (0.5, 0.5), "a"), Split((1, 2, 5), (0.2, 0.3, 0.5), "b", 0.8)):
        counts = Counter(split.arm(f"synthetic-{index}") for index in range(users))
        shares = [weight * split.coverage for weight in split.weights] + [1 - split.coverage]
        for arm, share in zip([*range(len(split.versions)), None], shares, strict=True):
            sigma = math.sqrt(share * (1 - share) / users)
            assert abs(counts[arm] / users - share) <= 4.5 * sigma + 1e-9, (split.arms, arm, counts)


def test_changing_the_weights_moves_only_the_users_growthbook_moves() -> None:
    before, after = Split((3, 4), (0.5, 0.5), "m"), Split((3, 4), (0.8, 0.2), "m")
    moved = [user for user in USERS if before.arm(user) != after.arm(user)]
    assert all(before.arm(user) == 1 and after.arm(user) == 0 for user in moved)  # only arm 1 gives up users
    assert 0.2 < len(moved) / len(USERS) < 0.4


@pytest.mark.parametrize(
    ("arms", "seed", "coverage", "field"),
    [
        ("3:0.5,4:0.6", "s", 1.0, "versions"),
        ("3:0.5,3:0.5", "s", 1.0, "versions"),
        ("3:-0.5,4:1.5", "s", 1.0, "versions"),
        ("0:1", "s", 1.0, "versions"),
        ("3", "s", 1.0, "versions"),
        ("three:1", "s", 1.0, "versions"),
        ("3:1", "s", 1.0, "versions"),
        ("3:0.5,4:0.5", "", 1.0, "seed"),
        ("3:0.5,4:0.5", "s", 1.5, "coverage"),
        ("3:0.5,4:0.5", "s", math.nan, "coverage"),
    ],
)
def test_an_invalid_split_is_refused_naming_the_field(
    arms: str, seed: str, coverage: float, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        Split.parse(arms, seed, coverage)
    assert field in {problem.field for problem in info.value.problems}


def test_arms_round_trip_through_their_text() -> None:
    split = Split.parse("3:0.5,4:0.5", "s", 0.5)
    assert (split.versions, split.weights, split.arms) == ((3, 4), (0.5, 0.5), "3:0.5,4:0.5")
    assert Split.parse(split.arms, split.seed, split.coverage) == split
