"""What a transport knows about a call besides its message: its deadline, its caller, its id."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from strata.access.tokens import ANONYMOUS, Principal
from strata.errors import InvalidArgument, Problem

#: The header (REST) and metadata key (gRPC) a request id travels in, both ways.
REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def request_id(given: str | None) -> str:
    """The caller's request id, checked, or a new one (32 hex digits) when it sent none."""
    if not given:
        return uuid.uuid4().hex
    if not _REQUEST_ID.match(given):
        raise InvalidArgument(
            "invalid request id",
            [Problem("1 to 128 printable ASCII characters, no spaces", field=REQUEST_ID_KEY)],
        )
    return given


@dataclass(frozen=True)
class Context:
    """A call's deadline (a ``time.monotonic()`` instant, or None), who is calling, and its request id.

    The request id comes from the caller (``x-request-id``) or is made up by
    the transport; it is echoed back and names the call's decision log entries.
    """

    deadline: float | None = None
    principal: Principal = ANONYMOUS
    request_id: str = ""
