"""Rule files -> validated specs -> compiled rulesets, with every error located.

A ruleset's checksum is over its canonical content (the parsed document as
sorted JSON), so reformatting a file or editing a comment does not make a new
version, while any change of meaning does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from strata.engine import CompiledRuleset, ProfileSchema, build_ruleset
from strata.engine.spec import KINDS, RulesetBase, RulesetSpec
from strata.errors import NotFound, Problem, RuleFileError
from strata.rulefiles.yamldoc import YamlDocument, parse_yaml

PROFILE_SCHEMA_FILE = "profile.yaml"
_SPEC_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RulesetSpec)


@dataclass(frozen=True)
class RuleFile:
    """A parsed, validated rule file (not yet compiled)."""

    spec: RulesetBase
    checksum: str
    document: YamlDocument
    text: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return str(self.spec.kind)

    def dependencies(self) -> list[str]:
        uses = getattr(self.spec, "uses", None)
        return [name for name in (getattr(uses, "lifecycle", None), getattr(uses, "segment", None)) if name]


def checksum_of(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _dotted(loc: Iterable[Any], kind: Any) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] == kind:  # pydantic puts the discriminator's value first
        parts = parts[1:]
    return ".".join(parts)


def parse_rule_file(text: str, file: str = "<rule file>") -> RuleFile:
    """Validate the file's structure; raises ``RuleFileError`` with every problem."""
    document = parse_yaml(text, file)
    data = document.data
    if not isinstance(data, dict):
        raise RuleFileError(
            "rule file must be a YAML mapping", [Problem("expected keys name, kind, ...", file=file, line=1)]
        )
    kind = data.get("kind")
    if kind not in KINDS:
        problem = Problem(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
        raise RuleFileError("invalid rule file", [document.locate(problem)])
    try:
        spec = _SPEC_ADAPTER.validate_python(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = _dotted(error["loc"], kind)
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(document.locate(Problem(message, field=field or None)))
        raise RuleFileError("invalid rule file", problems) from None
    return RuleFile(spec, checksum_of(data), document, text)


def compile_rule_file(
    rule_file: RuleFile, schema: ProfileSchema, dependencies: Mapping[str, CompiledRuleset[Any]] | None = None
) -> CompiledRuleset[Any]:
    """Compile a parsed file; compile errors come back with file and line."""
    try:
        return build_ruleset(rule_file.spec, schema, rule_file.checksum, dependencies)
    except RuleFileError as exc:
        raise RuleFileError(exc.message, [rule_file.document.locate(p) for p in exc.problems]) from None


def load_schema(path: Path) -> ProfileSchema:
    document = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    try:
        return ProfileSchema.from_spec(document.data or {})
    except (ValueError, KeyError, TypeError) as exc:
        raise RuleFileError("invalid profile schema", [Problem(str(exc), file=str(path))]) from None


@dataclass
class RuleSet:
    """Compiled rulesets by name, with the files they came from and the schema."""

    schema: ProfileSchema
    compiled: dict[str, CompiledRuleset[Any]]
    files: dict[str, RuleFile]

    def get(self, name: str) -> CompiledRuleset[Any]:
        if name not in self.compiled:
            raise NotFound(f"no ruleset named {name!r}", [Problem("unknown ruleset", field="ruleset")])
        return self.compiled[name]


def compile_all(files: list[RuleFile], schema: ProfileSchema) -> RuleSet:
    """Compile files in dependency order (interventions after what they use).

    Every failing file is reported; nothing is returned unless all compile.
    """
    by_name: dict[str, RuleFile] = {}
    problems: list[Problem] = []
    for rule_file in files:
        if rule_file.name in by_name:
            problems.append(
                Problem(f"ruleset {rule_file.name!r} is defined twice", file=rule_file.document.file)
            )
        by_name[rule_file.name] = rule_file
    compiled: dict[str, CompiledRuleset[Any]] = {}
    for rule_file in sorted(by_name.values(), key=lambda f: len(f.dependencies()) > 0):
        try:
            compiled[rule_file.name] = compile_rule_file(rule_file, schema, compiled)
        except RuleFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleFileError("rule files do not compile", problems)
    return RuleSet(schema, compiled, by_name)


def rule_paths(paths: Iterable[Path]) -> list[Path]:
    """The rule files named, directories expanded to their *.yaml (not profile.yaml)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.glob("*.yaml") if p.name != PROFILE_SCHEMA_FILE)
        else:
            found.append(path)
    return found


def read_rule_file(path: Path) -> RuleFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(
            "cannot read rule file", [Problem(exc.strerror or str(exc), file=str(path))]
        ) from None
    return parse_rule_file(text, str(path))


def load_paths(paths: Iterable[Path], schema_path: Path | None = None) -> tuple[RuleSet, list[str]]:
    """Load the named files, plus sibling files they depend on.

    Returns the compiled set and the names of the files asked for (siblings
    are loaded only to resolve ``uses:``). The schema is ``profile.yaml``
    beside the first file unless given.
    """
    wanted = rule_paths(paths)
    if not wanted:
        raise RuleFileError("no rule files given", [Problem("no *.yaml files found")])
    schema_path = schema_path or wanted[0].parent / PROFILE_SCHEMA_FILE
    schema = load_schema(schema_path)
    problems: list[Problem] = []
    files: list[RuleFile] = []
    for path in wanted:
        try:
            files.append(read_rule_file(path))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleFileError("rule files are invalid", problems)
    names = [f.name for f in files]
    missing = {dep for f in files for dep in f.dependencies()} - set(names)
    for sibling in rule_paths({p.parent for p in wanted}) if missing else []:
        if sibling in wanted:
            continue
        try:
            candidate = read_rule_file(sibling)
        except RuleFileError:
            continue
        if candidate.name in missing:
            files.append(candidate)
            missing.discard(candidate.name)
    return compile_all(files, schema), names
