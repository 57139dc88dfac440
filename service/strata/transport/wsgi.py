"""The WSGI entry point for gunicorn: ``gunicorn 'strata.transport.wsgi:app'``.

``app`` is built on first access (PEP 562), from ``Settings.from_env()``, so
importing this module has no side effects: gunicorn builds it in each
worker (or once in the master with ``--preload``), and tests or tools can
import the module freely. ``create_wsgi_app`` is the same as a factory
(``gunicorn 'strata.transport.wsgi:create_wsgi_app()'``).
"""

from __future__ import annotations

import atexit
import threading

from flask import Flask

from strata import metrics
from strata.config import Settings
from strata.transport.http import create_app
from strata.wiring import build_services, prepare_heap_for_serving

EXIT_FLUSH_SECONDS = 5.0
_lock = threading.Lock()
_app: Flask | None = None


def create_wsgi_app(settings: Settings | None = None) -> Flask:
    """The REST app over the database that ``settings`` name, hot-reloading activations."""
    settings = settings or Settings.from_env()
    services = build_services(settings)
    services.watcher.start()
    # A gunicorn worker stopping gracefully exits the interpreter: write out what its queues hold
    # (its arbiter's --graceful-timeout bounds this too).
    atexit.register(services.close, EXIT_FLUSH_SECONDS)
    if metrics.multiprocess_dir():  # another worker may answer /metrics: publish the engine's counts
        metrics.start_engine_sync()
    app = create_app(services.operations(), console=services.console(settings.console_secret))
    prepare_heap_for_serving()
    return app


def __getattr__(name: str) -> Flask:
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if _app is None:
            _app = create_wsgi_app()
        return _app
