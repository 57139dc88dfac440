"""Settings from the environment, read once at start-up.

Everything a deployment changes lives in ``STRATA_*`` variables so that the
same image runs on a laptop (SQLite file, no set-up) and in production
(Postgres URL from the orchestrator). Code takes a ``Settings`` instead of
reading ``os.environ`` itself, which keeps tests free to pass their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///var/strata.db"
# service/strata/config.py -> the repository root, where rules/ sits beside service/.
DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
#: A session secret shorter than this could be guessed; ``secrets.token_urlsafe(32)`` gives 43.
MIN_SECRET_CHARS = 32


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text == "":
        return default
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}={port}: a port is 1..65535")
    return port


_FLAGS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _share(environ: Mapping[str, str], name: str) -> float:
    text = environ.get(name) or "1"
    try:
        share = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a share, 0 to 1") from None
    if not 0 <= share <= 1:
        raise ValueError(f"{name}={text!r}: a share is 0 to 1")
    return share


def _flag(environ: Mapping[str, str], name: str) -> bool:
    text = environ.get(name) or "0"
    if text.lower() not in _FLAGS:
        raise ValueError(f"{name}={text!r}: expected 1 or 0 (true/false, yes/no, on/off)")
    return _FLAGS[text.lower()]


@dataclass(frozen=True)
class Settings:
    """Where the database and the rule files are, which ports to serve on, who may call."""

    database_url: str = DEFAULT_DATABASE_URL
    rules_dir: Path = DEFAULT_RULES_DIR
    grpc_port: int = 50051
    http_port: int = 8080
    #: Decisions and reads need a reader (or publisher) token; registry changes always need a publisher's.
    require_tokens: bool = False
    #: Where population-wide reads (impact previews) go, such as a read replica; empty: ``database_url``.
    read_database_url: str = ""
    #: A JSON lines file every decision is appended to, off the request path; empty: no decision log.
    decision_log: str = ""
    #: Signs the ops console's session cookies: the same on every replica; empty: the console is off.
    console_secret: str = ""
    #: The share of calls whose decisions are logged (shadow differences always are).
    decision_log_share: float = 1.0
    #: A port serving this process's Prometheus metrics on its own; 0: only REST's ``/metrics``.
    metrics_port: int = 0

    def __post_init__(self) -> None:
        if self.console_secret and len(self.console_secret) < MIN_SECRET_CHARS:
            raise ValueError(f"STRATA_CONSOLE_SECRET: at least {MIN_SECRET_CHARS} characters")
        if not self.read_database_url:
            object.__setattr__(self, "read_database_url", self.database_url)

    @property
    def profile_schema_path(self) -> Path:
        """The profile schema every stored profile is validated against."""
        return self.rules_dir / "profile.yaml"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``STRATA_*`` variables; unset or empty ones keep their defaults.

        Variables: ``STRATA_DATABASE_URL``, ``STRATA_RULES_DIR``,
        ``STRATA_GRPC_PORT``, ``STRATA_HTTP_PORT``, ``STRATA_REQUIRE_TOKENS``,
        ``STRATA_READ_DATABASE_URL``, ``STRATA_DECISION_LOG``, ``STRATA_CONSOLE_SECRET``,
        ``STRATA_DECISION_LOG_SHARE``, ``STRATA_METRICS_PORT``.
        A malformed value raises ``ValueError`` naming the variable, so a bad
        deployment fails at once.
        """
        env = os.environ if environ is None else environ
        rules_dir = env.get("STRATA_RULES_DIR")
        return cls(
            database_url=env.get("STRATA_DATABASE_URL") or DEFAULT_DATABASE_URL,
            rules_dir=Path(rules_dir) if rules_dir else DEFAULT_RULES_DIR,
            grpc_port=_port(env, "STRATA_GRPC_PORT", 50051),
            http_port=_port(env, "STRATA_HTTP_PORT", 8080),
            require_tokens=_flag(env, "STRATA_REQUIRE_TOKENS"),
            read_database_url=env.get("STRATA_READ_DATABASE_URL") or "",
            decision_log=env.get("STRATA_DECISION_LOG") or "",
            console_secret=env.get("STRATA_CONSOLE_SECRET") or "",
            decision_log_share=_share(env, "STRATA_DECISION_LOG_SHARE"),
            metrics_port=_port(env, "STRATA_METRICS_PORT", 0),
        )
