"""Small rule files for registry tests: quick to compile, versions that differ in one constant.

``lifecycle.probe`` calls a user ``active`` when their last active day is
within ``window`` days; its one case (last active 3 days before AS_OF)
expects ``active``, so windows below 3 fail their own test unless told
otherwise. ``segment.probe`` scores orders as ``score``; ``intervention.probe``
builds on both and reads that score, so a segment version that renames the
score breaks it.
"""

from __future__ import annotations

AS_OF = "2026-03-10T12:00:00Z"
LIFECYCLE = "lifecycle.probe"
SEGMENT = "segment.probe"
INTERVENTION = "intervention.probe"


def lifecycle(
    window: int = 7, *, expect: str = "active", when: str = "(days_since_last_active ?? 999) <= window"
) -> str:
    return f"""\
name: {LIFECYCLE}
kind: lifecycle
description: active within a window of days
constants: {{window: {window}}}
stages:
  - id: active
    when: {when}
    reason: active within the window
default: {{stage: idle, reason: not active within the window}}
tests:
  - name: three days away
    as_of: {AS_OF}
    profile: {{user_id: t1, activity_dates: [2026-03-07]}}
    expect: {{stage: {expect}}}
"""


def segment(score: str = "orders") -> str:
    return f"""\
name: {SEGMENT}
kind: segment
description: buyers by order count
scores:
  {score}: {{value: orders_365d, better: higher, thresholds: [1, 2, 5, 10]}}
segments:
  - id: buyer
    when: scores.{score} >= 2
    reason: at least one order
default: {{segment: browser, reason: no orders}}
"""


def intervention(threshold: int = 2) -> str:
    return f"""\
name: {INTERVENTION}
kind: intervention
description: nudge idle buyers
uses: {{lifecycle: {LIFECYCLE}, segment: {SEGMENT}}}
actions:
  - id: nudge
    when: lifecycle.stage == 'idle' and segment.scores.orders >= {threshold}
    channel: push
    template: come_back
    priority: 10
    reason: an idle buyer
"""
