"""The default rulesets' logic as zen-engine (GoRules) JDM decision tables, for the engine bench.

zen-engine evaluates JSON Decision Model graphs in Rust. Each graph here holds
the same rules as a default rule file (same thresholds, same order, first hit
for stages and segments, collect for tags and actions), written as decision
tables the way a GoRules user would. What a table cannot compute, the calendar
facts counted in the user's time zone, is computed in Python by the floor's own
helpers and passed in, as the engine computes its derived facts; cooldowns and
the top-N cut of interventions stay in Python, as in the engine. So a zen
decision here is: compute the facts, evaluate the graph, read its answer.

The bench checks every answer against the engine's before it times anything.
Decisions are evaluated through ``ZenEngine.evaluate`` with a static loader:
in zen-engine 2.1 ``ZenDecision.evaluate`` costs about 170 us a call from
Python, against about 7 us for the engine's keyed path.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

try:
    import zen
except ImportError:  # the bench runs without zen-engine: FACTS still serve the other sides
    zen = None

Answer = Callable[[Mapping[str, Any], Any, dt.datetime], dict[str, Any]]
RulesOnly = Callable[[Mapping[str, Any], dict[str, Any], dt.datetime], dict[str, Any]]
"""An answer from a parsed profile, the facts its rules read (already derived) and the instant."""
Rule = tuple[Sequence[str], Sequence[str]]  # (input cells, output cells)


def table(
    node_id: str,
    hit_policy: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    rules: Sequence[Rule],
    **options: Any,
) -> dict[str, Any]:
    """A decision table node: input columns are zen expressions, cells zen unary tests."""
    return {
        "id": node_id,
        "type": "decisionTableNode",
        "name": node_id,
        "position": {"x": 0, "y": 0},
        "content": {
            "hitPolicy": hit_policy,
            "passThrough": True,  # keep the inputs for the next table in the chain
            **options,
            "inputs": [
                {"id": f"{node_id}.in{i}", "name": field, "field": field} for i, field in enumerate(inputs)
            ],
            "outputs": [
                {"id": f"{node_id}.out{i}", "name": field, "field": field} for i, field in enumerate(outputs)
            ],
            "rules": [
                {
                    "_id": f"{node_id}.rule{n}",
                    **{f"{node_id}.in{i}": cell for i, cell in enumerate(cells)},
                    **{f"{node_id}.out{i}": value for i, value in enumerate(values)},
                }
                for n, (cells, values) in enumerate(rules)
            ],
        },
    }


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A JDM graph: the request, the tables one after the other, the response."""
    ends = [
        {"id": "request", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
        {"id": "response", "type": "outputNode", "name": "response", "position": {"x": 0, "y": 0}},
    ]
    path = ["request", *(node["id"] for node in nodes), "response"]
    edges = [
        {"id": f"edge{i}", "sourceId": source, "targetId": target, "type": "edge"}
        for i, (source, target) in enumerate(itertools.pairwise(path))
    ]
    return {"contentType": "application/vnd.gorules.decision", "nodes": [*ends, *nodes], "edges": edges}


def q(text: str) -> str:
    """A string constant in a cell."""
    return json.dumps(text)


# -- the graphs -------------------------------------------------------------------------------

JOURNEY_COLUMNS = [
    "registered",
    "days_since_registered ?? 9999",
    "(days_since_last_active ?? days_since_registered) ?? 0",
    "recent_gap_days ?? 0",
    "active_days_7d",
]
JOURNEY = table(
    "journey",
    "first",
    JOURNEY_COLUMNS,
    ["stage"],
    [
        (["false", "", "", "", ""], [q("potential")]),
        (["", "<= 7", "", "", ""], [q("new")]),
        (["", "", "> 30", "", ""], [q("churned")]),
        (["", "", "", "> 30", ""], [q("recalled")]),
        (["", "", ">= 8", "", ""], [q("declining")]),
        (["", "", "", "", ">= 4"], [q("active")]),
        (["", "", "", "", ""], [q("retained")]),
    ],
)
DUOLINGO = table(
    "duolingo",
    "first",
    ["is_first_day", "active_today", "active_d1_d6", "active_d7_d29", "active_before_d29"],
    ["stage"],
    [
        (["true", "", "", "", ""], [q("new")]),
        (["", "true", "true", "", ""], [q("current")]),
        (["", "true", "false", "true", ""], [q("reactivated")]),
        (["", "true", "false", "false", "true"], [q("resurrected")]),
        (["", "false", "true", "", ""], [q("at_risk_wau")]),
        (["", "false", "false", "true", ""], [q("at_risk_mau")]),
        (["", "", "", "", ""], [q("dormant")]),
    ],
)
PYRAMID_COLUMNS = [
    "is_signed_kol",
    "followers_count",
    "posts_30d",
    "likes_received_30d",
    "shares_30d + comments_30d + likes_given_30d",
]
PYRAMID = table(
    "pyramid",
    "first",
    PYRAMID_COLUMNS,
    ["segment"],
    [
        (["true", "", "", "", ""], [q("kol")]),
        (["", ">= 100000", "", "", ""], [q("kol")]),
        (["", "", ">= 4", ">= 200", ""], [q("creator")]),
        (["", "", "", "", ">= 10"], [q("active")]),
        (["", "", "", "", ""], [q("general")]),
    ],
)
PYRAMID_TAGS = table(
    "pyramid_tags",
    "collect",
    ["is_signed_kol", "followers_count", "shares_30d"],
    ["tag"],
    [
        (["true", "", ""], [q("signed_kol")]),
        (["false", "[10000..100000)", ""], [q("rising_star")]),
        (["", "", ">= 5"], [q("spreader")]),
    ],
    outputPath="tags",
)
RFM_SCORES = [
    table(
        "r",
        "first",
        ["days_since_last_order ?? 1000000"],  # never ordered: missing scores 1
        ["r"],
        [(["<= 7"], ["5"]), (["<= 30"], ["4"]), (["<= 90"], ["3"]), (["<= 180"], ["2"]), ([""], ["1"])],
    ),
    table(
        "f",
        "first",
        ["orders_365d"],
        ["f"],
        [([">= 20"], ["5"]), ([">= 10"], ["4"]), ([">= 5"], ["3"]), ([">= 2"], ["2"]), ([""], ["1"])],
    ),
    table(
        "m",
        "first",
        ["spend_365d"],
        ["m"],
        [([">= 5000"], ["5"]), ([">= 1000"], ["4"]), ([">= 300"], ["3"]), ([">= 100"], ["2"]), ([""], ["1"])],
    ),
]
RFM_SEGMENTS = table(
    "rfm",
    "first",
    ["r", "f"],
    ["segment"],
    [
        (["5", ">= 4"], [q("champions")]),
        (["3, 4", ">= 4"], [q("loyal")]),
        ([">= 4", "2, 3"], [q("potential_loyalist")]),
        (["5", "1"], [q("new")]),
        (["4", "1"], [q("promising")]),
        (["3", "3"], [q("need_attention")]),
        (["3", "<= 2"], [q("about_to_sleep")]),
        (["<= 2", "5"], [q("cant_lose")]),
        (["<= 2", "3, 4"], [q("at_risk")]),
        (["<= 2", "<= 2"], [q("hibernating")]),
        (["", ""], [q("hibernating")]),
    ],
)
RFM_TAGS = table(
    "rfm_tags",
    "collect",
    ["r", "m", "orders_365d", "days_since_last_order"],
    ["tag"],
    [
        (["", "5", "", ""], [q("big_spender")]),
        (["<= 2", ">= 4", "", ""], [q("high_value_lapsing")]),
        (["", "", "1", ""], [q("one_time_buyer")]),
        (["", "", "", "== null"], [q("never_ordered")]),
    ],
    outputPath="tags",
)
ENGAGED = 'not in ["potential", "churned"]'
ACTIONS = table(
    "actions",
    "collect",
    ["stage", "segment", "profile_fields_completed", "following_count", "tags"],
    ["id", "priority", "cooldown_days"],
    [
        ([q("declining"), f"{q('kol')}, {q('creator')}", "", "", ""], [q("top_tier_outreach"), "95", "14"]),
        ([q("new"), "", "< 5", "", ""], [q("onboard_complete_profile"), "90", "1"]),
        ([q("new"), "", "", "< 5", ""], [q("onboard_follow_people"), "85", "1"]),
        ([q("declining"), "", "", "", ""], [q("recall_coupon"), "80", "7"]),
        (["", q("kol"), "", "", ""], [q("kol_care"), "75", "30"]),
        ([q("declining"), "", "", "", ""], [q("recall_push"), "70", "3"]),
        ([q("churned"), "", "", "", ""], [q("winback_coupon"), "65", "30"]),
        ([q("churned"), "", "", "", ""], [q("winback_email"), "60", "14"]),
        (["", q("creator"), "", "", ""], [q("creator_care"), "55", "14"]),
        ([q("recalled"), "", "", "", ""], [q("welcome_back"), "50", "7"]),
        ([q("potential"), "", "", "", ""], [q("register_prompt"), "50", "1"]),
        ([ENGAGED, q("active"), "", "", ""], [q("active_care"), "40", "7"]),
        ([ENGAGED, "", "", "", 'contains($, "fashion")'], [q("invite_fashion_circle"), "30", "30"]),
        ([ENGAGED, "", "", "", 'contains($, "travel")'], [q("invite_travel_circle"), "30", "30"]),
        ([ENGAGED, q("general"), "", "", ""], [q("general_campaign"), "20", "7"]),
    ],
    outputPath="actions",
)
GRAPHS = {
    "lifecycle.journey": chain(JOURNEY),
    "lifecycle.duolingo": chain(DUOLINGO),
    "segment.pyramid": chain(PYRAMID, PYRAMID_TAGS),
    "segment.rfm": chain(*RFM_SCORES, RFM_SEGMENTS, RFM_TAGS),
    "intervention.default": chain(JOURNEY, PYRAMID, ACTIONS),
}

# -- the facts the tables read ------------------------------------------------------------------


def _calendar(profile: Mapping[str, Any], as_of: dt.datetime) -> tuple[dt.date, ZoneInfo, list[dt.date]]:
    """Today in the user's zone, the zone, and the active days up to today, in order (as the floors)."""
    zone = ZoneInfo(profile["timezone"] or "UTC")
    today = as_of.astimezone(zone).date()
    days = set(profile["activity_dates"])
    if profile["first_active_date"]:
        days.add(profile["first_active_date"])
    if profile["last_active_at"]:
        days.add(profile["last_active_at"].astimezone(zone).date())
    return today, zone, sorted(day for day in days if day <= today)


def journey_facts(profile: Mapping[str, Any], as_of: dt.datetime) -> dict[str, Any]:
    today, zone, days = _calendar(profile, as_of)
    registered = profile["registered_at"]
    gaps = [(later - earlier).days for earlier, later in itertools.pairwise(days) if (today - later).days < 7]
    return {
        "registered": registered is not None,
        "days_since_registered": None
        if registered is None
        else (today - registered.astimezone(zone).date()).days,
        "days_since_last_active": (today - days[-1]).days if days else None,
        "recent_gap_days": max(gaps) if gaps else None,
        "active_days_7d": sum(1 for day in days if (today - day).days < 7),
    }


def duolingo_facts(profile: Mapping[str, Any], as_of: dt.datetime) -> dict[str, Any]:
    today, _, days = _calendar(profile, as_of)
    ago = [(today - day).days for day in days]
    return {
        "is_first_day": bool(days) and days[0] == today,
        "active_today": 0 in ago,
        "active_d1_d6": any(1 <= a <= 6 for a in ago),
        "active_d7_d29": any(7 <= a <= 29 for a in ago),
        "active_before_d29": any(a >= 30 for a in ago),
    }


def pyramid_facts(profile: Mapping[str, Any]) -> dict[str, Any]:
    names = ("is_signed_kol", "followers_count", "posts_30d", "likes_received_30d", "shares_30d")
    return {name: profile[name] for name in (*names, "comments_30d", "likes_given_30d")}


def rfm_facts(profile: Mapping[str, Any], as_of: dt.datetime) -> dict[str, Any]:
    last_order = profile["last_order_at"]
    since = None
    if last_order is not None:
        zone = ZoneInfo(profile["timezone"] or "UTC")
        since = (as_of.astimezone(zone).date() - last_order.astimezone(zone).date()).days
    return {
        "days_since_last_order": since,
        "orders_365d": profile["orders_365d"],
        "spend_365d": profile["spend_365d"],
    }


def intervention_facts(profile: Mapping[str, Any], as_of: dt.datetime) -> dict[str, Any]:
    return {
        **journey_facts(profile, as_of),
        **pyramid_facts(profile),
        "profile_fields_completed": profile["profile_fields_completed"],
        "following_count": profile["following_count"],
        "tags": list(profile["tags"]),
    }


FACTS: dict[str, Callable[[Mapping[str, Any], dt.datetime], dict[str, Any]]] = {
    "lifecycle.journey": journey_facts,
    "lifecycle.duolingo": duolingo_facts,
    "segment.pyramid": lambda profile, as_of: pyramid_facts(profile),
    "segment.rfm": rfm_facts,
    "intervention.default": intervention_facts,
}
"""Per ruleset, the facts its table reads, computed in Python: what a caller must derive first."""


def tables() -> dict[str, RulesOnly]:
    """Per ruleset, zen-engine's answer for a parsed profile whose facts (``FACTS``) are known."""
    engine = zen.ZenEngine({"loader": {"type": "static", "content": GRAPHS}})

    def evaluate(name: str, facts: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = engine.evaluate(name, facts)["result"]
        return result

    def journey(profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
        return {"stage": evaluate("lifecycle.journey", facts)["stage"]}

    def duolingo(profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
        return {"stage": evaluate("lifecycle.duolingo", facts)["stage"]}

    def pyramid(profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
        result = evaluate("segment.pyramid", facts)
        return {
            "segment": result["segment"],
            "scores": {},
            "tags": tuple(hit["tag"] for hit in result["tags"]),
        }

    def rfm(profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
        result = evaluate("segment.rfm", facts)
        return {
            "segment": result["segment"],
            "scores": {"r": result["r"], "f": result["f"], "m": result["m"]},
            "tags": tuple(hit["tag"] for hit in result["tags"]),
        }

    def intervention(profile: Mapping[str, Any], facts: dict[str, Any], as_of: dt.datetime) -> dict[str, Any]:
        result = evaluate("intervention.default", facts)
        last_sent = profile["last_sent"]
        ready = [
            action
            for action in result["actions"]
            if (sent := last_sent.get(action["id"])) is None
            or sent + dt.timedelta(days=action["cooldown_days"]) <= as_of
        ]
        ready.sort(key=lambda action: -action["priority"])  # stable: file order breaks ties
        return {
            "stage": result["stage"],
            "segment": result["segment"],
            "actions": tuple(action["id"] for action in ready[:3]),
        }

    return {
        "lifecycle.journey": journey,
        "lifecycle.duolingo": duolingo,
        "segment.pyramid": pyramid,
        "segment.rfm": rfm,
        "intervention.default": intervention,
    }


def full_path(facts: Callable[[Mapping[str, Any], dt.datetime], dict[str, Any]], decide: RulesOnly) -> Answer:
    """Derive the facts, then decide: a caller's whole path from a parsed profile."""

    def answer(profile: Mapping[str, Any], event: Any, as_of: dt.datetime) -> dict[str, Any]:
        return decide(profile, facts(profile, as_of), as_of)

    return answer


def sides(rules_only: dict[str, RulesOnly]) -> dict[str, Answer]:
    """Per ruleset, a function giving zen-engine's answer for a parsed profile (as the floors do),
    from the ``tables()`` (one engine, built once, for both)."""
    return {name: full_path(FACTS[name], decide) for name, decide in rules_only.items()}
