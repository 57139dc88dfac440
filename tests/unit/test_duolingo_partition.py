"""The Duolingo states partition every activity history, exactly as DOMAIN.md's table."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.engine.facts import Clock, Facts
from strata.engine.kinds.lifecycle import LifecycleRuleset
from strata.rulefiles.loader import load_paths
from tests.conftest import RULES_DIR

RULESET, _ = load_paths([RULES_DIR / "lifecycle.duolingo.yaml"])
DUOLINGO = RULESET.compiled["lifecycle.duolingo"]
assert isinstance(DUOLINGO, LifecycleRuleset)
TODAY = dt.date(2026, 3, 10)
AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def table(days_ago: set[int]) -> str:
    """DOMAIN.md's table, written independently of the rule file."""
    first = max(days_ago) if days_ago else None
    today, week, month, earlier = (
        0 in days_ago,
        any(1 <= d <= 6 for d in days_ago),
        any(7 <= d <= 29 for d in days_ago),
        any(d >= 30 for d in days_ago),
    )
    if today and first == 0:
        return "new"
    if today:
        assert week or month or earlier  # not the first day, so some earlier day exists
        return "current" if week else "reactivated" if month else "resurrected"
    return "at_risk_wau" if week else "at_risk_mau" if month else "dormant"


histories = st.sets(st.integers(min_value=0, max_value=90), max_size=25)


@settings(max_examples=400, deadline=None)
@given(days_ago=histories, future=st.sets(st.integers(min_value=1, max_value=5), max_size=2))
def test_exactly_one_state_matches_and_it_is_the_tables(days_ago: set[int], future: set[int]) -> None:
    dates = sorted(TODAY - dt.timedelta(days=d) for d in days_ago)
    dates += [TODAY + dt.timedelta(days=d) for d in future]  # activity after as_of is ignored
    first = min(dates) if dates else None
    profile = DUOLINGO.schema.parse(
        {
            "user_id": "u",
            "activity_dates": [d.isoformat() for d in dates],
            "first_active_date": first.isoformat() if first else None,
        }
    )
    facts = DUOLINGO.facts(profile, Clock.for_profile(AS_OF, profile))
    matching = [c.result for c in DUOLINGO.stages if c.when.test(facts)]
    assert len(matching) <= 1, f"states overlap: {matching}"
    if days_ago:
        assert len(matching) == 1 or table(days_ago) == "dormant"
    assert DUOLINGO.decide(facts).stage == table(days_ago)
    assert isinstance(facts, Facts)
