"""The console's blueprint: sign-in, the session cookie, CSRF, roles and error pages.

Sessions are Flask's signed cookie, scoped to ``/console``, HTTP-only,
``Secure`` (browsers accept it over plain HTTP on ``localhost`` only; in
production the console sits behind TLS) and ``SameSite=Lax``. The session
holds the SHA-256 of the token signed in with, never the token, and the
token is checked again on every page, so revoking it ends the session.

CSRF: every POST must carry the session's own random token (the synchronizer
token pattern). A per-session token was chosen over Flask-WTF because the
console has no other use for WTForms: twenty lines on top of the signed
session do the same check, with no new dependency to keep up to date.
SameSite=Lax is the second line: a cross-site POST carries no session.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from strata.access.tokens import Role, token_hash
from strata.console.backend import Console
from strata.errors import InvalidArgument, PermissionDenied, Problem, StrataError, Unauthenticated
from strata.transport.errors import as_strata_error, status_of

SESSION_LIFETIME = dt.timedelta(hours=8)
#: Pages anyone may load: the sign-in form and the stylesheet it uses.
PUBLIC_ENDPOINTS = frozenset({"console.signin", "console.static"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

console_pages = Blueprint(
    "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
)


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only on the console's own paths.

    Flask opens the app's session on every request, API calls included; with a secret key
    that builds a signing serializer and parses the cookies each time (about 9% of a REST
    ``Decide``'s instructions), for a cookie the browser only sends under its path
    (``SESSION_COOKIE_PATH``). Elsewhere the request gets Flask's null session and nothing
    is saved.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        scope = self.get_cookie_path(app).rstrip("/")
        if request.path != scope and not request.path.startswith(scope + "/"):
            return None
        return super().open_session(app, request)


@dataclass(frozen=True)
class User:
    """Who is signed in, from their token as checked on this request."""

    name: str
    role: Role

    @property
    def can_change(self) -> bool:
        return self.role is Role.PUBLISHER


def services() -> Console:
    """The use cases this app's console was registered with."""
    console: Console = current_app.extensions["strata.console"]
    return console


def user() -> User:
    """Who is signed in: set by ``guard`` before every page but the public ones."""
    signed_in: User = g.console_user
    return signed_in


def require_publisher() -> User:
    """The signed-in user, if their token may change the registry."""
    current = user()
    if not current.can_change:
        raise PermissionDenied(
            f"{current.name!r} signed in with a reader token: it may look, not change",
            [Problem("sign in with a publisher token", field="token")],
        )
    return current


def csrf_token() -> str:
    """This session's CSRF token, made on first use (also before sign-in: the sign-in form has one)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "this form did not come from your console session",
            [Problem("reload the page and submit it again", field="csrf_token")],
        )


def _signed_in() -> User | None:
    digest = session.get("token")
    if not isinstance(digest, str):
        return None
    try:
        principal = services().tokens.principal(digest)
    except Unauthenticated:
        session.clear()
        return None
    return None if principal.role is None else User(principal.name, principal.role)


@console_pages.before_request
def guard() -> Response | tuple[str, int] | None:
    """Refuse a forged POST, send the signed-out to the sign-in page, know who is signed in."""
    if not services().secret:
        return render_template("unconfigured.html"), 503
    if request.method == "POST":
        _check_csrf()
    signed_in = _signed_in()
    g.console_user = signed_in
    if signed_in is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return redirect(url_for("console.signin", next=request.full_path.rstrip("?")))
    return None


@console_pages.after_request
def secure(response: Response) -> Response:
    """Pages may not be framed, sniffed or kept in a shared cache; the stylesheets may be cached."""
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@console_pages.context_processor
def template_names() -> dict[str, Any]:
    """What every console template may use: who is signed in, the form token."""
    return {"user": g.get("console_user"), "csrf_token": csrf_token}


@console_pages.errorhandler(Exception)
def on_error(exc: Exception) -> tuple[str, int]:
    """Strata's own message and problems, with the status of the one error table."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        error: StrataError = InvalidArgument(exc.description or exc.name)
    else:
        error = as_strata_error(exc)
        status = status_of(error).http
    return render_template("error.html", error=error, status=status), status


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.rulesets")


@console_pages.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template("signin.html", next=request.args.get("next", ""))
    token = request.form.get("token", "").strip()
    try:
        services().tokens.principal(token_hash(token))
    except Unauthenticated as exc:
        return render_template("signin.html", next=request.form.get("next", ""), error=exc), 401
    session.clear()  # a new session on sign-in: nothing carried over from before
    session.permanent = True
    session["token"] = token_hash(token)
    csrf_token()
    return redirect(_safe_next(request.form.get("next")))


@console_pages.post("/signout")
def signout() -> Response:
    session.clear()
    return redirect(url_for("console.signin"))
