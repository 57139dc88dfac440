"""The api_tokens table: a token's name, role and SHA-256, never the token itself."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from strata.errors import InvalidArgument, Problem
from strata.store.models import API_TOKENS
from strata.store.sql import connect, utc

_T = API_TOKENS


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: str
    created_at: dt.datetime
    revoked: bool


class TokenStore:
    """SQL over ``api_tokens``; the hashing and the checks live in ``strata.access.tokens``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _connect(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        return connect(self._engine, write=write, what="the token database")

    def insert(self, name: str, role: str, token_hash: str) -> TokenRecord:
        """Store a new token; a name already taken is refused."""
        now = dt.datetime.now(dt.UTC)
        try:
            with self._connect(write=True) as connection:
                connection.execute(
                    insert(_T).values(name=name, role=role, token_hash=token_hash, created_at=now)
                )
        except IntegrityError:
            raise InvalidArgument(
                f"a token named {name!r} exists", [Problem("choose another name", field="name")]
            ) from None
        return TokenRecord(name, role, now, revoked=False)

    def find(self, token_hash: str) -> TokenRecord | None:
        query = select(_T.c.name, _T.c.role, _T.c.created_at, _T.c.revoked).where(
            _T.c.token_hash == token_hash
        )
        with self._connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else TokenRecord(row.name, row.role, utc(row.created_at), row.revoked)

    def records(self) -> list[TokenRecord]:
        query = select(_T.c.name, _T.c.role, _T.c.created_at, _T.c.revoked).order_by(_T.c.id)
        with self._connect() as connection:
            return [
                TokenRecord(r.name, r.role, utc(r.created_at), r.revoked) for r in connection.execute(query)
            ]

    def revoke(self, name: str) -> bool:
        """Revoke the named token; False if there is none."""
        with self._connect(write=True) as connection:
            return connection.execute(update(_T).where(_T.c.name == name).values(revoked=True)).rowcount == 1
