"""Where the two rulesets of a preview come from: a rule file, or a version in the registry.

A reference is a path to a rule file, a version number (``3``), ``active``,
``latest``, or an alias (``canary``). Both the CLI and an API endpoint resolve
``--candidate`` and ``--against`` here, so they accept the same references and
refuse the same mistakes (another ruleset's file, a ruleset with nothing active).
"""

from __future__ import annotations

from pathlib import Path

from strata.engine import ProfileSchema
from strata.errors import InvalidArgument, NotFound, Problem
from strata.preview.runner import Version
from strata.registry.cache import source_name
from strata.registry.service import Registry
from strata.rulefiles.loader import RuleFile, compile_rule_file, parse_rule_file, read_rule_file


def named(rule_file: RuleFile, name: str, where: str) -> RuleFile:
    """``rule_file`` if it is the ruleset ``name``; ``where`` says what held it (a path, a field)."""
    if rule_file.name != name:
        raise InvalidArgument(
            f"{where} is the ruleset {rule_file.name!r}, not {name!r}",
            [Problem("preview compares two versions of one ruleset", field=where)],
        )
    return rule_file


def from_file(path: Path, name: str, schema: ProfileSchema) -> Version:
    """A rule file on disk, which must be the ruleset ``name``."""
    return Version(str(path), compile_rule_file(named(read_rule_file(path), name, str(path)), schema))


def version_number(registry: Registry, name: str, reference: str) -> tuple[int, str]:
    """The version a reference names, and how to label it: ``v3``, ``active (v3)``, ``canary (v2)``."""
    if reference.isdigit():
        return int(reference), f"v{reference}"
    head = registry.head(name)
    if reference == "active":
        if head.active_version is None:
            raise NotFound(
                f"ruleset {name!r} has no active version", [Problem("activate one first", field="against")]
            )
        number = head.active_version
    elif reference == "latest":
        number = head.latest_version
    elif reference in head.aliases:
        number = head.aliases[reference]
    else:
        known = ", ".join(["active", "latest", *head.aliases]) or "none"
        raise NotFound(
            f"ruleset {name!r} has no version or alias {reference!r}",
            [Problem(f"use a version number or one of: {known}", field="version")],
        )
    return number, f"{reference} (v{number})"


def from_registry(registry: Registry, name: str, reference: str, schema: ProfileSchema) -> Version:
    """A stored version of ``name`` (number, ``active``, ``latest`` or an alias), compiled."""
    number, label = version_number(registry, name, reference)
    record = registry.version(name, number)
    rule_file = parse_rule_file(record.content or "", source_name(name, number))
    return Version(label, compile_rule_file(rule_file, schema))


def is_file_reference(reference: str) -> bool:
    """Whether a reference names a rule file rather than a stored version."""
    return reference.endswith((".yaml", ".yml")) or Path(reference).is_file()
