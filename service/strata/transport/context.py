"""What a transport knows about a call besides its message: its deadline, its caller, its id."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from strata.access.tokens import ANONYMOUS, Principal
from strata.errors import InvalidArgument, Problem

#: The header (REST) and metadata key (gRPC) a request id travels in, both ways.
REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def request_id(given: str | None) -> str:
    """The caller's request id, checked, or a new one (32 random hex digits) when it sent none.

    Random bytes, not a ``uuid4`` (the same bytes less six, wrapped in an object): this runs on
    every call, and the UUID costs three times as much for nothing a reader of the id needs.
    """
    if not given:
        return os.urandom(16).hex()
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
