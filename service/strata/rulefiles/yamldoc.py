"""YAML documents that remember where each value was written.

PyYAML's safe loader forgets line numbers and silently keeps the last of two
duplicate keys. Here the node tree is walked once to record the line of every
path (``stages.2.when`` -> 14) and to refuse duplicate keys, so an error can
point at the line an ops person has to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from strata.engine.limits import LIMITS
from strata.errors import Problem, RuleFileError

MAX_FILE_BYTES = LIMITS.file_bytes
# libyaml's parser when PyYAML was built with it (about ten times faster), else the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    lines: dict[str, int]
    file: str

    def line_of(self, path: str) -> int | None:
        """The line of ``path`` or of its nearest enclosing value."""
        parts = path.split(".") if path else []
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return self.lines.get("")

    def rule_at(self, path: str) -> str | None:
        """The ``id`` of the innermost rule (a mapping with an id) along ``path``."""
        node, rule = self.data, None
        for part in path.split(".") if path else []:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                break
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                rule = node["id"]
        return rule

    def locate(self, problem: Problem) -> Problem:
        """The same problem with this document's file, line and rule filled in."""
        path = problem.field or ""
        return Problem(
            problem.message,
            file=self.file,
            line=problem.line or self.line_of(path),
            rule=problem.rule or self.rule_at(path),
            field=problem.field,
        )


def _record_lines(
    node: yaml.Node, path: str, lines: dict[str, int], problems: list[Problem], file: str
) -> None:
    lines[path] = node.start_mark.line + 1
    prefix = path + "." if path else ""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    Problem(
                        f"duplicate key {key!r}",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        field=prefix + key,
                    )
                )
            seen.add(key)
            _record_lines(value_node, prefix + key, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, f"{prefix}{index}", lines, problems, file)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document; malformed YAML is an error with its line."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise RuleFileError(
            "rule file too large", [Problem(f"larger than {MAX_FILE_BYTES} bytes", file=file)]
        )
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()  # one parse: the node tree gives lines, then the data
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"malformed YAML: {exc.problem or exc.context}"
        raise RuleFileError("rule file is not valid YAML", [Problem(message, file=file, line=line)]) from None
    except yaml.YAMLError as exc:
        raise RuleFileError("rule file is not valid YAML", [Problem(str(exc), file=file)]) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _record_lines(node, "", lines, problems, file)
    if problems:
        raise RuleFileError("rule file has duplicate keys", problems)
    return YamlDocument(data, lines, file)
