"""The read-only pages: rulesets, one ruleset, one version (file, tests, facts, diff), the audit log."""

from __future__ import annotations

from flask import render_template, request

from strata.console.backend import can_preview, last_changes, version_report
from strata.console.changes import number
from strata.console.render import code_lines, side_by_side
from strata.console.web import console_pages, services
from strata.registry.cache import source_name

AUDIT_PAGE = 50


@console_pages.get("/")
def rulesets() -> str:
    """Every ruleset: kind, active version, aliases, split, shadow, revision and its last change."""
    registry = services().registry
    heads = registry.rulesets()
    return render_template(
        "rulesets.html",
        heads=heads,
        splits=registry.splits(),
        shadows=registry.shadows(),
        changes=last_changes(registry, heads),
    )


@console_pages.get("/rulesets/<name>")
def ruleset(name: str) -> str:
    """A ruleset's versions, and (for publishers) the forms that change it."""
    registry = services().registry
    head = registry.head(name)
    return render_template(
        "ruleset.html",
        head=head,
        versions=registry.versions(name),
        split=registry.split(name),
        shadow=registry.shadow(name),
        previewable=can_preview(head.kind),
    )


@console_pages.get("/rulesets/<name>/versions/<int:version>")
def version(name: str, version: int) -> str:
    """A version's file, its test cases and their results, the facts it reads, and a diff on request."""
    registry = services().registry
    report = version_report(registry, name, version)
    diff = None
    against = request.args.get("against", "").strip()
    if against:
        other = registry.version(name, number(request.args, "against"))
        old, new = (other, report.record) if other.version < version else (report.record, other)
        diff = side_by_side(
            old.content or "",
            new.content or "",
            source_name(name, old.version),
            source_name(name, new.version),
        )
    return render_template(
        "version.html",
        head=registry.head(name),
        report=report,
        lines=code_lines(report.record.content or ""),
        versions=registry.versions(name),
        against=against,
        diff=diff,
        previewable=can_preview(report.record.kind),
    )


@console_pages.get("/audit")
def audit() -> str:
    """Who changed what, when, from which version to which; newest first, paged back by id."""
    ruleset = request.args.get("ruleset", "").strip()
    before = number(request.args, "before") if request.args.get("before") else None
    entries = services().registry.audit(ruleset, AUDIT_PAGE, before)
    older = entries[-1].id if len(entries) == AUDIT_PAGE else None
    return render_template("audit.html", entries=entries, ruleset=ruleset, older=older)
