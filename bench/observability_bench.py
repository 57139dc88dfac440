"""What metrics and shadows cost a Decide on the request path (issue 6).

In process, ``DecisionService.decide`` with an inline profile and all four
kinds (the bench/service_bench.py body), over the default rules, in four
variants whose rounds alternate:

- **bare**: ``metrics.count_decision`` replaced by a no-op (the service before metrics);
- **metrics**: as shipped (one counter increment per decision);
- **shadow 10%**: as shipped, and every ruleset shadowed by a candidate for 10% of the users;
- **shadow 100%**: every decision of every user handed to the shadow runner.

The clock is the calling thread's CPU time (``time.thread_time``), so the
shadow runner's own thread, which does the candidate's work, is not counted:
what is measured is what the caller waits for. Each figure is the median of
the rounds, per Decide. This machine is shared: compare the ratios of one run.

    .venv/bin/python bench/observability_bench.py [--users 200] [--rounds 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service_bench import EVENT, KINDS, profiles

from strata import metrics
from strata.decisions import DecideRequest, DecisionService
from strata.rulefiles.loader import load_paths
from strata.rulesets import ACTIVE, SHADOW, FixedRulesets, Served, ShadowServed, Snapshot
from strata.shadowrunner import ShadowRunner
from strata.shadows import Shadow

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


def service(share: float | None) -> DecisionService:
    """The default rules as version 1 of each ruleset; with ``share``, version 2 shadows each."""
    rules, _ = load_paths([RULES_DIR])
    served = {name: Served(compiled, 1, ACTIVE) for name, compiled in rules.compiled.items()}
    shadows = {}
    if share is not None:
        shadows = {
            name: ShadowServed(Shadow(2, share, "bench"), Served(compiled, 2, SHADOW))
            for name, compiled in rules.compiled.items()
        }
    snapshot = Snapshot(rules.schema, served, None, {}, shadows)
    return DecisionService(FixedRulesets(snapshot), shadows=ShadowRunner() if share is not None else None)


def per_decide(run: Callable[[], None], count: int) -> float:
    started = time.thread_time()
    run()
    return (time.thread_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200, help="Decide calls per round")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    requests = [DecideRequest(profile=p, rulesets=tuple(KINDS), event=EVENT) for p in profiles(args.users)]
    counting = metrics.count_decision

    def no_count(*_: Any) -> None:
        return None

    variants: dict[str, tuple[DecisionService, Callable[..., None]]] = {
        "bare": (service(None), no_count),
        "metrics": (service(None), counting),
        "shadow 10%": (service(0.1), counting),
        "shadow 100%": (service(1.0), counting),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds + 1):  # the first round warms up
        for name, (decisions, count) in variants.items():
            metrics.count_decision = count

            def run(decisions: DecisionService = decisions) -> None:
                for request in requests:
                    decisions.decide(request)

            times[name].append(per_decide(run, len(requests)))
    metrics.count_decision = counting
    bare = statistics.median(times["bare"][1:])
    print(f"Decide (4 kinds, inline profile), in process, {args.users} users x {args.rounds} rounds")
    print(f"{'variant':<12} {'µs/Decide':>10} {'vs bare':>8}")
    for name, values in times.items():
        median = statistics.median(values[1:])
        print(f"{name:<12} {median * 1e6:>10.1f} {median / bare:>8.3f}")
    print(f"shadow runs dropped (queue full): {metrics.SHADOW_DROPPED._value.get():.0f}")


if __name__ == "__main__":
    main()
