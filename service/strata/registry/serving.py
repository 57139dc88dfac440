"""The registry's active versions as the snapshot the decision service reads.

``refresh`` asks the registry whether anything changed (one cheap query);
only then does it read the active versions, compile what this replica has
not compiled yet, and swap in a new snapshot, one reference assignment,
which readers see whole or not at all. A refresh that fails (the database
is down, or the active versions stopped compiling together) keeps serving
the snapshot it has and says so in the log.

Each new set of versions served is also saved to a local file
(``SavedRulesFile``); ``restore`` serves that file when the database is
down at start, until the first refresh that reaches it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from strata.errors import NotFound, Problem, StrataError, Unavailable
from strata.registry.cache import CompiledVersions
from strata.registry.records import Head
from strata.registry.saved import SavedRules, SavedRulesFile
from strata.registry.service import Registry
from strata.rulesets import ACTIVE, PINNED, SHADOW, SPLIT, Served, ShadowServed, Snapshot, SplitServed
from strata.shadows import Shadow
from strata.splits import Split

log = logging.getLogger(__name__)


class RegistryPins:
    """Pinned versions as of one refresh: numbers up to the latest, and the aliases then.

    An unknown name, number or alias fails without a query; a known version
    is read and compiled once per replica (the registry's cache), against the
    snapshot's versions of the rulesets it ``uses:``.
    """

    def __init__(self, registry: Registry, heads: Mapping[str, Head]) -> None:
        self._registry = registry
        self._heads = heads

    def pin(self, snapshot: Snapshot, name: str, ref: str) -> Served:
        head = self._heads.get(name)
        if head is None:
            raise NotFound(f"no ruleset named {name!r}", [Problem("unknown ruleset", field="ruleset")])
        version = int(ref) if ref.isdigit() else head.aliases.get(ref)
        if version is None or not 1 <= version <= head.latest_version:
            what = "version" if ref.isdigit() else "alias"
            raise NotFound(
                f"ruleset {name!r} has no {what} {ref!r}", [Problem(f"unknown {what}", field="ruleset")]
            )
        dependencies = {dep: served.compiled for dep, served in snapshot.rulesets.items()}
        return Served(self._registry.compiled.compile_version(name, version, dependencies), version, PINNED)


class OfflinePins:
    """Pins while serving saved rules: other versions live in the database, which cannot be reached."""

    def pin(self, snapshot: Snapshot, name: str, ref: str) -> Served:
        raise Unavailable(f"cannot pin {name}@{ref}: the rule registry's database is unavailable")


class ActiveRulesets:
    """A ``RulesetSource`` that serves each ruleset's active version (saving each new set to ``saved``)."""

    def __init__(self, registry: Registry, saved: SavedRulesFile | None = None) -> None:
        self._registry = registry
        self._saved = saved
        self._snapshot = Snapshot(registry.compiled.schema, {})
        self._active: dict[str, int] = {}
        self._marker: int | None = None
        self._splits: dict[str, Split] = {}
        self._shadows: dict[str, Shadow] = {}
        self._unreachable = False
        self._lock = threading.Lock()  # one refresh at a time; readers never wait

    def current(self) -> Snapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Catch up with the registry; True when a new snapshot was swapped in."""
        with self._lock:
            try:
                marker = self._registry.marker()
                if marker == self._marker:
                    return False
                heads = {head.name: head for head in self._registry.rulesets()}
                active = {
                    name: head.active_version
                    for name, head in heads.items()
                    if head.active_version is not None
                }
                compiled = self._registry.compiled.compile_set(active) if active != self._active else None
                splits = self._registry.splits()
                rulesets = (
                    self._snapshot.rulesets
                    if compiled is None
                    else {name: Served(compiled[name], version, ACTIVE) for name, version in active.items()}
                )
                served_splits = self._serve_splits(self._registry.compiled, rulesets, splits)
                shadows = self._registry.shadows()
                served_shadows = self._serve_shadows(rulesets, shadows)
            except Unavailable as exc:
                if not self._unreachable:  # say it once per outage, not on every poll
                    log.warning("%s (%s); serving the rulesets loaded before", exc, exc.__cause__)
                self._unreachable = True
                return False
            except StrataError as exc:  # only a race between two activations can get here
                log.error("the active versions do not compile together; serving the ones before: %s", exc)
                self._marker = marker
                return False
            self._unreachable, self._marker = False, marker
            pins = RegistryPins(self._registry, heads)
            self._snapshot = Snapshot(self._snapshot.schema, rulesets, pins, served_splits, served_shadows)
            changed = compiled is not None or splits != self._splits or shadows != self._shadows
            self._active, self._splits, self._shadows = active, splits, shadows
            if not changed:  # same versions answer; aliases or latest versions may differ
                return False
            self._save(active, splits)
        log.info("serving %s", ", ".join(f"{name}@{version}" for name, version in sorted(active.items())))
        for name, split in sorted(splits.items()):
            log.info("splitting %s: %s seed=%s coverage=%r", name, split.arms, split.seed, split.coverage)
        for name, shadow in sorted(shadows.items()):
            log.info("shadowing %s: %s", name, shadow.detail)
        return True

    def restore(self) -> bool:
        """Serve the saved rulesets (the database is down at start); False when there are none to serve."""
        rules = self._saved.load() if self._saved is not None else None
        if rules is None:
            return False
        versions = CompiledVersions(self._snapshot.schema, lambda name, version: rules.texts[(name, version)])
        try:
            compiled = versions.compile_set(rules.active)
            rulesets = {
                name: Served(compiled[name], version, ACTIVE) for name, version in rules.active.items()
            }
            splits = self._serve_splits(versions, rulesets, rules.splits)
        except (StrataError, KeyError) as exc:
            log.error(
                "the saved rulesets in %s cannot be served: %s", self._saved.path if self._saved else "", exc
            )
            return False
        self._snapshot = Snapshot(self._snapshot.schema, rulesets, OfflinePins(), splits)
        served = ", ".join(f"{name}@{version}" for name, version in sorted(rules.active.items()))
        log.warning("the registry's database is unavailable; serving the saved rulesets: %s", served)
        return True

    def _save(self, active: Mapping[str, int], splits: Mapping[str, Split]) -> None:
        """Save what ``restore`` needs to serve these versions again: their text, with the splits' arms."""
        if self._saved is None:
            return
        wanted = set(active.items()) | {(name, v) for name, split in splits.items() for v in split.versions}
        try:  # the texts were just compiled, so they are cached; a reload that fails only skips the save
            texts = {(name, version): self._registry.compiled.text(name, version) for name, version in wanted}
        except StrataError as exc:
            log.warning("the active rulesets were not saved: %s", exc)
            return
        self._saved.save(SavedRules(dict(active), dict(splits), texts))

    def _serve_splits(
        self, versions: CompiledVersions, rulesets: Mapping[str, Served], splits: Mapping[str, Split]
    ) -> dict[str, SplitServed]:
        """Each split with its arms compiled against the active versions; one that fails is skipped."""
        dependencies = {name: served.compiled for name, served in rulesets.items()}
        served: dict[str, SplitServed] = {}
        for name, split in splits.items():
            if name not in rulesets:
                log.error("the split of %s is ignored: the ruleset has no active version", name)
                continue
            try:
                arms = tuple(
                    Served(
                        versions.compile_version(name, version, dependencies),
                        version,
                        f"{SPLIT}:{arm}",
                    )
                    for arm, version in enumerate(split.versions)
                )
            except Unavailable:
                raise
            except StrataError as exc:
                log.error("the split of %s is ignored: %s", name, exc)
                continue
            served[name] = SplitServed(split, arms)
        return served

    def _serve_shadows(
        self, rulesets: Mapping[str, Served], shadows: Mapping[str, Shadow]
    ) -> dict[str, ShadowServed]:
        """Each shadow with its candidate compiled against the active versions; one that fails is skipped."""
        dependencies = {name: served.compiled for name, served in rulesets.items()}
        served: dict[str, ShadowServed] = {}
        for name, shadow in shadows.items():
            try:
                candidate = self._registry.compiled.compile_version(name, shadow.version, dependencies)
            except Unavailable:
                raise
            except StrataError as exc:
                log.error("the shadow of %s is ignored: %s", name, exc)
                continue
            served[name] = ShadowServed(shadow, Served(candidate, shadow.version, SHADOW))
        return served
