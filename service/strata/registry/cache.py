"""Compiled versions, per replica: each version is parsed once and compiled once.

A version's content never changes, so what it compiles to depends only on
its content and, for a ruleset that ``uses:`` others, on the content of
those it was compiled against. Checksums name content, so the key is the
file's checksum plus its dependencies' checksums: the same thing as
(name, version, dependency versions), and it lets a publish's validation
compile count for the activation that follows. Activating a new lifecycle
version recompiles the interventions built on it and nothing else. Both maps
are bounded (least recently used go first), so a replica that lives through
thousands of publishes does not keep them all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from strata.engine import CompiledRuleset, ProfileSchema
from strata.errors import Problem, RuleFileError
from strata.rulefiles.loader import RuleFile, compile_rule_file, parse_rule_file

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
CompileKey = tuple[str, tuple[tuple[str, str], ...]]  # checksum, (dependency, its checksum)...


class _Lru(Generic[K, V]):
    """A bounded map that makes a missing value on first use. Not thread-safe: the owner locks."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._capacity = capacity

    def get(self, key: K, make: Callable[[], V]) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)
        return value


def source_name(name: str, version: int) -> str:
    """How a stored version is named in error messages: ``lifecycle.duolingo@3``."""
    return f"{name}@{version}"


class CompiledVersions:
    """Stored versions, parsed and compiled on first use; ``load`` reads a version's content."""

    def __init__(self, schema: ProfileSchema, load: Callable[[str, int], str], capacity: int = 256) -> None:
        self.schema = schema
        self._load = load
        self._files: _Lru[tuple[str, int], RuleFile] = _Lru(capacity)
        self._compiled: _Lru[CompileKey, CompiledRuleset[Any]] = _Lru(capacity)
        self._lock = threading.Lock()

    def compile_set(self, versions: Mapping[str, int]) -> dict[str, CompiledRuleset[Any]]:
        """Compile these versions together, each ``uses:`` resolved to the version in the set.

        Raises ``RuleFileError`` listing every version that does not compile
        (a dependency missing from the set, or a type error against the
        dependency's version).
        """
        with self._lock:
            files = {name: self._file(name, version) for name, version in versions.items()}
            compiled: dict[str, CompiledRuleset[Any]] = {}
            problems: list[Problem] = []
            for name, rule_file in sorted(files.items(), key=lambda item: bool(item[1].dependencies())):
                try:
                    compiled[name] = self._compile(rule_file, compiled)
                except RuleFileError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise RuleFileError("the versions do not compile together", problems)
        return compiled

    def compile_version(
        self, name: str, version: int, dependencies: Mapping[str, CompiledRuleset[Any]]
    ) -> CompiledRuleset[Any]:
        """A stored version compiled against ``dependencies`` (a pinned version); raises ``RuleFileError``."""
        with self._lock:
            return self._compile(self._file(name, version), dependencies)

    def compile(
        self, rule_file: RuleFile, dependencies: Mapping[str, CompiledRuleset[Any]]
    ) -> CompiledRuleset[Any]:
        """``rule_file`` compiled against ``dependencies``; raises ``RuleFileError``."""
        with self._lock:
            return self._compile(rule_file, dependencies)

    def text(self, name: str, version: int) -> str:
        """A version's rule file text (read once, then cached with its parse)."""
        with self._lock:
            return self._file(name, version).text

    def _compile(
        self, rule_file: RuleFile, dependencies: Mapping[str, CompiledRuleset[Any]]
    ) -> CompiledRuleset[Any]:
        uses = {dep: dependencies[dep] for dep in rule_file.dependencies() if dep in dependencies}
        key = (rule_file.checksum, tuple(sorted((dep, ruleset.checksum) for dep, ruleset in uses.items())))
        return self._compiled.get(key, lambda: compile_rule_file(rule_file, self.schema, uses))

    def _file(self, name: str, version: int) -> RuleFile:
        return self._files.get(
            (name, version), lambda: parse_rule_file(self._load(name, version), source_name(name, version))
        )
