"""The pages that act: publish, confirm and make a change, preview a candidate, try a decision.

Publishing and changes need a publisher; previews and "Try" change nothing,
so readers may use them (Try is a POST only because a pasted profile may be
too long for a URL; like every console POST it carries the CSRF token).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from strata.console import backend
from strata.console.changes import parse_change
from strata.console.render import code_lines, heatmap, problems_by_line
from strata.console.web import console_pages, require_publisher, services
from strata.decisions import DEFAULT_RULESETS
from strata.errors import InvalidArgument, Problem, StrataError
from strata.preview import PreviewResult
from strata.registry.records import Head
from strata.rulefiles.loader import parse_rule_file
from strata.transport.errors import status_of

CANDIDATE_SOURCE = "<candidate>"


def _uploaded_or_pasted() -> str:
    """The uploaded file's text if one was chosen, else the pasted text."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        try:
            data: bytes = upload.read()
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"{upload.filename} is not UTF-8 text", [Problem("upload a YAML rule file", field="file")]
            ) from None
    return request.form.get("content", "")


def _refused_file(content: str, note: str, error: StrataError) -> tuple[str, int]:
    """The publish page again, the file's problems under their lines, the text kept for editing."""
    lines = code_lines(content)
    located, unplaced = problems_by_line(error, len(lines))
    page = render_template(
        "publish.html",
        content=content,
        note=note,
        error=error,
        lines=lines,
        located=located,
        unplaced=unplaced,
    )
    return page, status_of(error).http


@console_pages.route("/publish", methods=["GET", "POST"])
def publish() -> str | Response | tuple[str, int]:
    """Paste or upload a rule file: checked, type checked and tested; stored only if all pass."""
    if request.method == "GET":
        return render_template("publish.html", content="", note="")
    author = require_publisher()
    content, note = _uploaded_or_pasted(), request.form.get("note", "")
    try:
        published = services().registry.publish(content, author.name, note)
    except StrataError as exc:
        return _refused_file(content, note, exc)
    services().refresh()  # "Try" can pin the new version at once
    record = published.version
    if published.created:
        flash(f"Published {record.name} v{record.version}: every test passed. It is not active yet.")
    else:
        flash(f"This content is already stored as {record.name} v{record.version}; nothing new was stored.")
    return redirect(url_for("console.version", name=record.name, version=record.version))


@console_pages.post("/rulesets/<name>/change/<action>")
def change(name: str, action: str) -> str | Response:
    """First post: what will change, to confirm. Confirmed post: the change, if the page is not stale."""
    actor = require_publisher()
    registry = services().registry
    wanted = parse_change(action, name, request.form)
    if request.form.get("confirmed") != "yes":
        return render_template("confirm.html", change=wanted, action=action, effects=wanted.preview(registry))
    head = wanted.apply(registry, actor.name)
    services().refresh()
    flash(f"{wanted.title}: done. {name} is now at revision {head.revision}.")
    return redirect(url_for("console.ruleset", name=name))


def _preview_page(result: PreviewResult, head: Head, candidate: str, against: str) -> str:
    moves = sorted((cell for cell in result.cells if cell.changed), key=lambda cell: -cell.count)
    versions = services().registry.versions(head.name)
    return render_template(
        "preview.html",
        result=result,
        heat=heatmap(result),
        moves=moves,
        head=head,
        versions=versions,
        candidate=candidate,
        against=against,
    )


@console_pages.get("/rulesets/<name>/preview")
def preview(name: str) -> str:
    """The impact preview of a stored candidate against another version: heatmap, moves, totals."""
    candidate = request.args.get("candidate", "latest").strip()
    against = request.args.get("against", "active").strip()
    result = services().previews.preview(name, candidate=candidate, against=against)
    return _preview_page(result, services().registry.head(name), candidate, against)


@console_pages.post("/preview")
def preview_file() -> str | tuple[str, int]:
    """The impact preview of a pasted or uploaded file before it is published, against the active version."""
    content, note = _uploaded_or_pasted(), request.form.get("note", "")
    try:
        name = parse_rule_file(content, CANDIDATE_SOURCE).name
        result = services().previews.preview(name, candidate_content=content)
    except StrataError as exc:
        return _refused_file(content, note, exc)
    return _preview_page(result, services().registry.head(name), "", "active")


@console_pages.route("/try", methods=["GET", "POST"])
def try_page() -> str | tuple[str, int]:
    """A stored user or a pasted profile, and the four decisions with their explanations."""
    console = services()
    form = request.form if request.method == "POST" else request.args
    choices = backend.ruleset_choices(console.registry)
    values = {"event": '{"type": "sign_in"}', **DEFAULT_RULESETS, **form.to_dict()}
    if request.method == "GET":
        return render_template("try.html", choices=choices, values=values, result=None)
    try:
        result = backend.try_decisions(console.decisions, form)
    except StrataError as exc:
        page = render_template("try.html", choices=choices, values=values, result=None, error=exc)
        return page, status_of(exc).http
    return render_template("try.html", choices=choices, values=values, result=result, outcome=backend.outcome)
