"""Settings from the environment, read once at start-up.

Everything a deployment changes lives in ``STRATA_*`` variables so that the
same image runs on a laptop (SQLite file, no set-up) and in production
(Postgres URL from the orchestrator). Code takes a ``Settings`` instead of
reading ``os.environ`` itself, which keeps tests free to pass their own.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)
DEFAULT_DATABASE_URL = "sqlite:///var/strata.db"
# service/strata/config.py -> the repository root, where rules/ sits beside service/.
DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
#: A session secret shorter than this could be guessed; ``secrets.token_urlsafe(32)`` gives 43.
MIN_SECRET_CHARS = 32
#: gRPC handler threads. Decisions are CPU work under one GIL, which a few threads share with less
#: contention than many; calls that wait on the database need more than one (docs/benchmarks.md).
DEFAULT_GRPC_WORKERS = 4
#: gRPC server processes sharing the port. One GIL caps a process at about one core of Python; more
#: processes use more cores but each loads its own rules and database pool, so one is the default
#: (a laptop, ``make run``, one-core containers) and a deployment sets its cores (docs/benchmarks.md).
DEFAULT_GRPC_PROCESSES = 1


def _number(
    environ: Mapping[str, str],
    name: str,
    default: N,
    convert: Callable[[str], N],
    expected: str,
    allowed: Callable[[N], bool],
    bounds: str,
) -> N:
    """``name``'s value converted, or ``default`` when unset; a bad value names the variable."""
    text = environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = convert(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected {expected}") from None
    if not allowed(value):
        raise ValueError(f"{name}={value}: {bounds}")
    return value


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    return _number(
        environ, name, default, int, "a port number", lambda p: 0 < p < 65536, "a port is 1..65535"
    )


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
    return _number(
        environ, name, 1.0, float, "a share, 0 to 1", lambda share: 0 <= share <= 1, "a share is 0 to 1"
    )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    return _number(
        environ,
        name,
        default,
        float,
        "seconds, such as 2 or 0.5",
        lambda s: 0 < s < 3600,
        "0 to 3600 seconds",
    )


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    return _number(environ, name, default, int, "a whole number", lambda n: n >= 1, "expected 1 or more")


@dataclass(frozen=True)
class RequestLimits:
    """The largest request Strata reads, in one place: both transports enforce the same numbers.

    Sizes are checked before anything is parsed (body, message); the rest on
    the parsed request, each refusal naming the field (see
    ``strata.transport.limits``). Numbers are doubles on the wire (JSON,
    ``google.protobuf.Value``), so integers beyond 2^53 - 1 would arrive
    rounded: they are refused rather than silently changed.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_message_bytes: int = 4 * 1024 * 1024
    #: Characters in one string (a rule file's ``content`` is bounded by the body size only).
    max_string_chars: int = 64 * 1024
    #: Items in one list (profile lists, ``rulesets``, a batch's ``requests``).
    max_list_items: int = 10_000
    #: Nesting of objects and lists inside a profile or event, the top level being 1.
    max_depth: int = 32
    max_integer: int = 2**53 - 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestLimits:
        defaults = cls()
        return cls(
            max_body_bytes=_positive(env, "STRATA_MAX_BODY_BYTES", defaults.max_body_bytes),
            max_message_bytes=_positive(env, "STRATA_MAX_MESSAGE_BYTES", defaults.max_message_bytes),
            max_string_chars=_positive(env, "STRATA_MAX_STRING_CHARS", defaults.max_string_chars),
            max_list_items=_positive(env, "STRATA_MAX_LIST_ITEMS", defaults.max_list_items),
            max_depth=_positive(env, "STRATA_MAX_DEPTH", defaults.max_depth),
        )


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
    #: Threads answering gRPC calls (health checks included), in each gRPC process.
    grpc_workers: int = DEFAULT_GRPC_WORKERS
    #: Processes serving gRPC on the one port (``SO_REUSEPORT``: the kernel spreads connections).
    grpc_processes: int = DEFAULT_GRPC_PROCESSES
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
    limits: RequestLimits = field(default_factory=RequestLimits)
    #: The longest a profile load may take (pool wait, connect, query); a request's deadline may cut it shorter.
    database_timeout: float = 2.0
    #: Where the last known good active rulesets are kept, to serve when the database is down at start;
    #: empty: ``var/rules-<hash of the database URL>.json``, so replicas of different databases never mix.
    rules_snapshot: str = ""

    def __post_init__(self) -> None:
        if self.console_secret and len(self.console_secret) < MIN_SECRET_CHARS:
            raise ValueError(f"STRATA_CONSOLE_SECRET: at least {MIN_SECRET_CHARS} characters")
        if not self.read_database_url:
            object.__setattr__(self, "read_database_url", self.database_url)
        if not self.rules_snapshot:
            digest = hashlib.sha256(self.database_url.encode()).hexdigest()[:16]
            object.__setattr__(self, "rules_snapshot", f"var/rules-{digest}.json")

    @property
    def profile_schema_path(self) -> Path:
        """The profile schema every stored profile is validated against."""
        return self.rules_dir / "profile.yaml"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``STRATA_*`` variables; unset or empty ones keep their defaults.

        Variables: ``STRATA_DATABASE_URL``, ``STRATA_RULES_DIR``,
        ``STRATA_GRPC_PORT``, ``STRATA_HTTP_PORT``, ``STRATA_GRPC_WORKERS``, ``STRATA_GRPC_PROCESSES``,
        ``STRATA_REQUIRE_TOKENS``,
        ``STRATA_READ_DATABASE_URL``, ``STRATA_DECISION_LOG``, ``STRATA_CONSOLE_SECRET``,
        ``STRATA_DECISION_LOG_SHARE``, ``STRATA_METRICS_PORT``, ``STRATA_DATABASE_TIMEOUT``,
        ``STRATA_RULES_SNAPSHOT`` and the request limits (``STRATA_MAX_BODY_BYTES``,
        ``STRATA_MAX_MESSAGE_BYTES``, ``STRATA_MAX_STRING_CHARS``, ``STRATA_MAX_LIST_ITEMS``,
        ``STRATA_MAX_DEPTH``).
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
            grpc_workers=_positive(env, "STRATA_GRPC_WORKERS", DEFAULT_GRPC_WORKERS),
            grpc_processes=_positive(env, "STRATA_GRPC_PROCESSES", DEFAULT_GRPC_PROCESSES),
            require_tokens=_flag(env, "STRATA_REQUIRE_TOKENS"),
            read_database_url=env.get("STRATA_READ_DATABASE_URL") or "",
            decision_log=env.get("STRATA_DECISION_LOG") or "",
            console_secret=env.get("STRATA_CONSOLE_SECRET") or "",
            decision_log_share=_share(env, "STRATA_DECISION_LOG_SHARE"),
            metrics_port=_port(env, "STRATA_METRICS_PORT", 0),
            limits=RequestLimits.from_env(env),
            database_timeout=_seconds(env, "STRATA_DATABASE_TIMEOUT", 2.0),
            rules_snapshot=env.get("STRATA_RULES_SNAPSHOT") or "",
        )
