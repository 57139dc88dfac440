"""Bearer tokens: created once, stored as SHA-256, checked on every call that needs one.

A token is 32 random bytes (``strata_`` + URL-safe base64), so its SHA-256
is as good as a password hash: there is nothing to brute-force, and a leaked
table grants nothing. Checked tokens are remembered for ``ttl`` seconds, so
a replica requiring tokens on every decision does not query the database on
every decision; a revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from strata.access.store import TokenRecord, TokenStore
from strata.errors import InvalidArgument, NotFound, PermissionDenied, Problem, Unauthenticated

TOKEN_PREFIX = "strata_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_CACHED_TOKENS = 1024


class Role(StrEnum):
    """What a token may do: publishers change the registry, readers ask for decisions."""

    PUBLISHER = "publisher"
    READER = "reader"


#: Roles a role includes: a publisher may also read.
GRANTS: dict[Role, frozenset[Role]] = {
    Role.PUBLISHER: frozenset({Role.PUBLISHER, Role.READER}),
    Role.READER: frozenset({Role.READER}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role, or an anonymous caller (no role)."""

    name: str
    role: Role | None = None


ANONYMOUS = Principal("anonymous")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """Create, list, revoke and check tokens."""

    def __init__(
        self, store: TokenStore, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._checked: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: str) -> str:
        """A new token for ``name``: returned once, never stored in the clear."""
        if not NAME.match(name):
            raise InvalidArgument(
                f"invalid token name {name!r}",
                [Problem("letters, digits and _ . @ -, at most 64", field="name")],
            )
        if role not in {r.value for r in Role}:
            raise InvalidArgument(f"unknown role {role!r}", [Problem("publisher or reader", field="role")])
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._store.insert(name, role, token_hash(token))
        return token

    def records(self) -> list[TokenRecord]:
        return self._store.records()

    def revoke(self, name: str) -> None:
        if not self._store.revoke(name):
            raise NotFound(f"no token named {name!r}", [Problem("unknown token", field="name")])

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` value; ``Unauthenticated`` otherwise."""
        if not authorization:
            raise Unauthenticated(
                "this call needs a bearer token",
                [Problem("send the header Authorization: Bearer <token>", field="authorization")],
            )
        match = _BEARER.match(authorization)
        if match is None:
            raise Unauthenticated(
                "the credentials are not a bearer token",
                [Problem("expected Bearer <token>", field="authorization")],
            )
        return self.principal(token_hash(match.group(1)))

    def principal(self, digest: str) -> Principal:
        """The principal of a token known by its SHA-256; ``Unauthenticated`` if unknown or revoked.

        A console session keeps the digest, not the token, and asks again on each page, so a
        revoked token ends its sessions within ``ttl`` seconds.
        """
        now = self._clock()
        with self._lock:
            cached = self._checked.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        record = self._store.find(digest)
        if record is None or record.revoked:
            raise Unauthenticated(
                "the bearer token is not valid", [Problem("unknown or revoked token", field="authorization")]
            )
        principal = Principal(record.name, Role(record.role))
        with self._lock:
            if len(self._checked) >= _CACHED_TOKENS:
                self._checked.clear()
            self._checked[digest] = (principal, now + self._ttl)
        return principal


class Access:
    """Which calls need which token: the policy both transports apply.

    A call that needs the publisher role always needs a token. A call that
    needs the reader role needs one only when the deployment requires tokens
    (``STRATA_REQUIRE_TOKENS``); otherwise its caller is anonymous.
    """

    def __init__(self, tokens: Tokens | None, *, require_tokens: bool = False) -> None:
        self._tokens = tokens
        self._require_tokens = require_tokens

    def authorize(self, needed: Role, authorization: str | None) -> Principal:
        if needed is Role.READER and not self._require_tokens:
            return ANONYMOUS
        if self._tokens is None:
            raise Unauthenticated("this server has no token store: it accepts no credentials")
        principal = self._tokens.authenticate(authorization)
        if principal.role is None or needed not in GRANTS[principal.role]:
            raise PermissionDenied(
                f"this call needs a {needed} token; {principal.name!r} is a {principal.role} token",
                [Problem(f"use a token with the {needed} role", field="authorization")],
            )
        return principal
