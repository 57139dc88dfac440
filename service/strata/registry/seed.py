"""Seeding: the rule files under ``rules/`` become the first versions of an empty registry.

Each file whose ruleset has no active version is published (author
``seed``) and activated, rulesets that others ``use`` first. On an empty
database that is every file; a seed interrupted half way is completed on
the next start (publishing the same content again returns the version
stored). Rulesets with an active version are left alone: from then on the
registry, not the files, says what is served. Replicas starting
together may seed at once: the same content publishes once, and the
activation that loses the race was not needed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from strata.errors import Conflict
from strata.registry.service import Registry
from strata.rulefiles.loader import read_rule_file, rule_paths

SEED_AUTHOR = "seed"


def seed(registry: Registry, rules_dir: Path) -> list[str]:
    """Publish and activate the files whose rulesets have no active version; the names seeded."""
    known = set(registry.active_versions())
    missing = [(path, read_rule_file(path)) for path in rule_paths([rules_dir])]
    missing = [(path, rule_file) for path, rule_file in missing if rule_file.name not in known]
    seeded = []
    for path, rule_file in sorted(missing, key=lambda item: bool(item[1].dependencies())):
        published = registry.publish(
            rule_file.text, SEED_AUTHOR, f"seeded from {path.name}", source=str(path)
        )
        head = registry.head(rule_file.name)
        if head.active_version is None:
            with contextlib.suppress(Conflict):  # another replica seeding at the same time activated it
                registry.activate(rule_file.name, published.version.version, head.revision, SEED_AUTHOR)
        seeded.append(rule_file.name)
    return seeded
