"""Profile use cases: what may be stored, and how a request's profile is assembled.

A profile is checked against the profile schema before it is stored, so a
bad write is refused with the field named and nothing stored changes. The
same check runs on every decision (stored and inline fields merged), so a
field's problem is reported as ``profile.<field>``, the path a caller sent.

Pure Python: the store is anything with the small interface below (the
SQLAlchemy store in production, a dict in tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from strata.engine.schema import ProfileSchema
from strata.errors import InvalidArgument, NotFound, Problem, ProfileError


class ProfileReader(Protocol):
    """What decisions need from a profile store: a read that gives up at ``deadline`` (monotonic)."""

    def get(self, user_id: str, deadline: float | None = None) -> dict[str, Any] | None: ...


class ProfileStore(ProfileReader, Protocol):
    """What the profile endpoints need from a profile store."""

    def upsert(self, profile: dict[str, Any]) -> None: ...

    def delete(self, user_id: str) -> bool: ...


def parse_profile(schema: ProfileSchema, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed profile values; problems name the field as the caller sent it (``profile.x``)."""
    try:
        return schema.parse(raw)
    except ProfileError as exc:
        raise prefixed(exc) from None


def prefixed(error: ProfileError) -> ProfileError:
    """The same error with each field named from the request's root (``profile.points``)."""
    problems = [
        dataclasses.replace(p, field=f"profile.{p.field}" if p.field else "profile") for p in error.problems
    ]
    return ProfileError(error.message, problems)


def require_user_id(user_id: str, field: str = "user_id") -> str:
    if not isinstance(user_id, str) or not user_id:
        raise InvalidArgument("a user_id is required", [Problem("missing", field=field)])
    return user_id


def check_same_user(user_id: str, profile: Mapping[str, Any]) -> None:
    """A profile's own user_id may repeat the request's, never contradict it."""
    inline = profile.get("user_id")
    if inline is not None and inline != user_id:
        raise InvalidArgument(
            "the profile's user_id differs from the request's",
            [Problem(f"expected {user_id!r} or absent", field="profile.user_id")],
        )


class ProfileService:
    """Upsert, read and delete stored profiles, refusing what the schema refuses."""

    def __init__(self, schema: ProfileSchema, store: ProfileStore) -> None:
        self.schema = schema
        self.store = store

    def upsert(self, user_id: str, profile: Mapping[str, Any]) -> dict[str, Any]:
        """Check and store ``profile``; returns what the store now holds for the user."""
        if not isinstance(profile, Mapping):
            raise InvalidArgument(
                "a profile must be a JSON object", [Problem("not an object", field="profile")]
            )
        user_id = user_id or str(profile.get("user_id") or "")
        require_user_id(user_id)
        check_same_user(user_id, profile)
        document = {**profile, "user_id": user_id}
        parse_profile(self.schema, document)
        try:
            self.store.upsert(document)
        except ProfileError as exc:  # the store's own limits (64-bit integers, NUL in text)
            raise prefixed(exc) from None
        return self.store.get(user_id) or document

    def get(self, user_id: str) -> dict[str, Any]:
        require_user_id(user_id)
        profile = self.store.get(user_id)
        if profile is None:
            raise NotFound(f"no profile for user {user_id!r}", [Problem("unknown user", field="user_id")])
        return profile

    def delete(self, user_id: str) -> None:
        require_user_id(user_id)
        if not self.store.delete(user_id):
            raise NotFound(f"no profile for user {user_id!r}", [Problem("unknown user", field="user_id")])
