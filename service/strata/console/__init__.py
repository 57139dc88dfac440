"""The ops console: publish, test, preview, activate and roll back rule versions from a browser.

Server-rendered pages (Jinja2) under ``/console`` of the REST app, over the
same use cases as the API: ``backend`` (what the pages read), ``changes``
(the confirmed changes), ``web`` (sign-in, session, CSRF, errors), ``pages``
(read-only pages), ``actions`` (publish, try, preview, changes), ``render``
(highlighting, diffs, the heatmap).
"""

from __future__ import annotations

from flask import Flask

from strata.console import actions, pages
from strata.console.backend import Console
from strata.console.web import SESSION_LIFETIME, ConsoleSessions, console_pages

__all__ = ["Console", "register_console"]
_ROUTES = (actions, pages)  # imported for their routes, which join ``console_pages``


def register_console(app: Flask, console: Console) -> None:
    """Serve the console under ``/console`` of the REST app, with its own session cookie."""
    app.config.update(
        SECRET_KEY=console.secret or None,
        SESSION_COOKIE_NAME="strata_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = ConsoleSessions()
    app.extensions["strata.console"] = console
    app.register_blueprint(console_pages)
