"""The one error type callers handle: never ``grpc.RpcError`` or ``requests`` exceptions."""

from __future__ import annotations

from typing import Any

TRANSIENT_CODES = frozenset({"unavailable", "deadline_exceeded", "resource_exhausted"})


class StrataError(Exception):
    """A failed call: the server's stable ``code``, its message and located details.

    ``request_id`` is the call's id as the server answered with it (the
    caller's, or one the server made up), or the caller's when no answer came:
    what to quote when asking about the call. None when neither is known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.errors = errors or []
        self.request_id = request_id

    @property
    def transient(self) -> bool:
        """Worth retrying: the server was unreachable or overloaded, not the request wrong."""
        return self.code in TRANSIENT_CODES
