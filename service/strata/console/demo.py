"""What ``strata serve --demo`` (``make run``) prepares so that a newcomer can sign in to the console.

A session secret and a publisher token, each written to a file only its
owner can read (``var/console-secret``, ``var/console-token``), kept across
restarts: sessions survive a restart, and the token stays the one to paste.
A production deployment sets ``STRATA_CONSOLE_SECRET`` and creates named
tokens instead (``strata tokens create``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from strata.access.tokens import Tokens, token_hash
from strata.config import MIN_SECRET_CHARS
from strata.errors import Unauthenticated

DEMO_DIR = Path("var")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


def demo_secret(directory: Path = DEMO_DIR) -> str:
    """The secret in ``console-secret``, made on first use."""
    path = directory / "console-secret"
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= MIN_SECRET_CHARS:
            return secret
    secret = secrets.token_urlsafe(32)
    _write_private(path, secret)
    return secret


def demo_token(tokens: Tokens, directory: Path = DEMO_DIR) -> Path:
    """The file holding a publisher token valid in this database, made anew if it holds none."""
    path = directory / "console-token"
    if path.exists():
        try:
            tokens.principal(token_hash(path.read_text().strip()))
            return path
        except Unauthenticated:
            pass  # another database's token, or revoked: make one for this database
    _write_private(path, tokens.create(f"demo-ops-{secrets.token_hex(3)}", "publisher"))
    return path
