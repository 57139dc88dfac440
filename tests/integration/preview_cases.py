"""Hypothesis strategies for the preview's equivalence tests: edge-case profiles and rule expressions.

Profiles lean on what breaks SQL translations: zones whose local day differs
from UTC's at ``as_of`` (+14:00, -11:00, +05:45, DST changes), activity dates
unsorted, duplicated, in the future or contradicting ``first_active_date``,
null instants, counts at thresholds and past 2**53, floats whose decimal
digits do not survive a double. Expressions are drawn from the subset
``strata.preview.sqlcompile`` translates, well typed by construction.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

BASE_DAY = dt.date(2026, 3, 10)
AS_OF = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Europe/London",
    "America/Los_Angeles",
    "America/Sao_Paulo",
]
EDGE_PREFIX = "edge"

# Instants to classify at: midday, both sides of UTC midnight, the EU and US DST changes.
as_of_instants = st.sampled_from(
    [
        AS_OF,
        dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 10, 0, 15, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC),
    ]
) | st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC))

days = st.integers(-60, 45).map(lambda ago: BASE_DAY - dt.timedelta(days=ago)) | st.dates(
    dt.date(2019, 1, 1), dt.date(2027, 6, 30)
)
offsets = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
)
instants = st.builds(
    lambda day, seconds, zone: (
        dt.datetime.combine(day, dt.time(), zone) + dt.timedelta(seconds=seconds)
    ).isoformat(),
    days,
    st.integers(0, 86_399),
    offsets,
)
counts = (
    st.integers(0, 40) | st.sampled_from([99_999, 100_000, 100_001, 2**53 + 1, 2**62]) | st.integers(0, 2**40)
)
spends = st.sampled_from(
    [0.0, 0.1, 99.99, 100.0, 299.99999999999994, 1000.0000000000001, 5000.0]
) | st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
words = st.sampled_from(["", "black_card", "food", "travel", "vip", "VIP", "é", "a b"])


@st.composite
def profiles(draw: st.DrawFn, number: int) -> dict[str, Any]:
    """One profile document, valid against rules/profile.yaml, built to hit edge cases."""
    activity = draw(st.lists(days, max_size=12))
    first = draw(st.none() | days | (st.sampled_from(activity) if activity else st.none()))
    return {
        "user_id": f"{EDGE_PREFIX}{number:04d}",
        "registered_at": draw(st.none() | instants),
        "timezone": draw(st.sampled_from(ZONES)),
        "first_active_date": first.isoformat() if first else None,
        "activity_dates": [day.isoformat() for day in activity],
        "last_active_at": draw(st.none() | instants),
        "followers_count": draw(counts),
        "is_signed_kol": draw(st.booleans()),
        "posts_30d": draw(counts),
        "likes_received_30d": draw(counts),
        "comments_30d": draw(counts),
        "shares_30d": draw(counts),
        "likes_given_30d": draw(counts),
        "orders_365d": draw(counts),
        "spend_365d": draw(spends),
        "last_order_at": draw(st.none() | instants),
        "points": draw(counts),
        "membership": draw(st.none() | words),
        "tags": draw(st.lists(words, max_size=3)),
        "badges": draw(st.lists(words, max_size=2)),
    }


edge_profiles = st.integers(1, 25).flatmap(lambda n: st.tuples(*(profiles(i) for i in range(n))))

# -- expressions -------------------------------------------------------------------------

INT_FIELDS = ["followers_count", "posts_30d", "shares_30d", "orders_365d", "points", "level", "streak_days"]
INT_FACTS = ["active_days_7d", "active_days_30d", "local_hour"]
NULLABLE_NUMBERS = [
    "days_since_registered",
    "days_since_last_active",
    "days_since_last_order",
    "recent_gap_days",
]
BOOL_ATOMS = [
    "is_signed_kol",
    "is_first_day",
    "active_today",
    "active_d1_d6",
    "active_d7_d29",
    "active_before_d29",
]
CONSTANTS = {"c_int": 12, "c_dec": 2.5, "c_str": "black_card", "c_flag": True}

int_literals = st.integers(-3, 40).map(str)
literals = int_literals | st.sampled_from(["0.5", "99.5", "0.1", "100", "c_int", "c_dec"])

numbers = st.recursive(
    st.sampled_from(INT_FIELDS + INT_FACTS + ["spend_365d", "tags.length", "timezone.length"]) | literals,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, int_literals).map(lambda t: f"({t[0]} * {t[1]})"),
        inner.map(lambda e: f"-{e}" if not e.startswith("-") else e),
        st.tuples(st.sampled_from(NULLABLE_NUMBERS), inner).map(lambda t: f"({t[0]} ?? {t[1]})"),
    ),
    max_leaves=4,
)
strings = st.sampled_from(["(membership ?? 'none')", "timezone", "c_str", "'vip'", "'Asia/Tokyo'"])
instants_rules = st.sampled_from(
    [
        "$now",
        "d'2026-03-01T00:00:00Z'",
        "(registered_at ?? $now)",
        "(last_order_at ?? d'2020-01-01')",
        "((last_active_at ?? $now) + t'P7D')",
        "((registered_at ?? $now) - t'PT36H')",
    ]
)
local_times = st.sampled_from(["$today", "(first_active_date ?? $today)", "(last_checkin_date ?? $today)"])
comparisons = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])

atoms = st.one_of(
    st.sampled_from([*BOOL_ATOMS, "c_flag", "true"]),
    st.tuples(numbers, comparisons, numbers).map(" ".join),
    st.tuples(numbers, st.lists(literals, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]} in [{', '.join(t[1])}]"
    ),
    st.tuples(strings, comparisons, strings).map(" ".join),
    st.tuples(strings, st.sampled_from(["tags", "badges"])).map(lambda t: f"{t[0]} in {t[1]}"),
    st.sampled_from(
        [
            "membership == null",
            "membership != null",
            "membership in tags",
            "null in tags",
            "tags.is_empty",
            "timezone.starts_with('Asia/')",
            "timezone.ends_with('o')",
            "'York' in timezone",
            "(membership ?? '').is_empty",
            "(membership ?? 'x') in ['black_card', 'vip']",
        ]
    ),
    st.tuples(st.sampled_from(NULLABLE_NUMBERS), st.sampled_from(["== null", "!= null", "== 1", "!= 3"])).map(
        " ".join
    ),
    st.tuples(instants_rules | local_times, comparisons, instants_rules | local_times).map(" ".join),
    st.tuples(numbers, strings, strings).map(lambda t: f"({t[0]} > 3 ? {t[1]} : {t[2]}) == 'vip'"),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        inner.map(lambda e: f"not ({e})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"(({t[0]}) ? ({t[1]}) : ({t[2]}))"),
    ),
    max_leaves=3,
)


def lifecycle_file(conditions: list[str]) -> str:
    """A lifecycle rule file whose stages are the given conditions, in order."""
    stages = [
        {"id": f"s{index}", "when": when, "reason": "generated"} for index, when in enumerate(conditions)
    ]
    document = {
        "name": "lifecycle.generated",
        "kind": "lifecycle",
        "description": "generated by the preview's property test",
        "constants": CONSTANTS,
        "stages": stages,
        "default": {"stage": "other", "reason": "generated"},
    }
    return json.dumps(document)  # JSON is YAML
