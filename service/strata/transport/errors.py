"""The one table from error codes to HTTP and gRPC statuses, and the error envelope.

Transports never choose a status themselves: they look up the error's stable
code here (an ad-hoc switch per transport is how a write conflict ends up as
a 404). A unit test checks that every class in ``strata.errors.ALL_ERRORS``
has a row.

The envelope is the ``strata.v1.Error`` message: ``{code, message,
errors: [{message, file, line, rule, field}]}``. REST sends it as the body;
gRPC sends the code and message as the status and the same envelope, as
JSON, in the trailing metadata key ``strata-error-bin``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
import orjson

from strata.errors import StrataError
from strata.transport.convert import error_message, message_to_json, summary

GRPC_ERROR_KEY = "strata-error-bin"
log = logging.getLogger(__name__)
__all__ = [
    "ERROR_TABLE",
    "GRPC_ERROR_KEY",
    "Status",
    "as_strata_error",
    "code_for_grpc",
    "envelope",
    "envelope_bytes",
    "error_message",
    "status_of",
    "summary",
]


@dataclass(frozen=True)
class Status:
    http: int
    grpc: grpc.StatusCode


#: code -> statuses. HTTP follows grpc-gateway's mapping where it has one.
ERROR_TABLE: dict[str, Status] = {
    "invalid_argument": Status(400, grpc.StatusCode.INVALID_ARGUMENT),
    "failed_precondition": Status(400, grpc.StatusCode.FAILED_PRECONDITION),
    "unauthenticated": Status(401, grpc.StatusCode.UNAUTHENTICATED),
    "permission_denied": Status(403, grpc.StatusCode.PERMISSION_DENIED),
    "not_found": Status(404, grpc.StatusCode.NOT_FOUND),
    "aborted": Status(409, grpc.StatusCode.ABORTED),
    "resource_exhausted": Status(413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    # A rule failed on a well-typed profile: a defect of the ruleset, not of the request.
    "evaluation_failed": Status(500, grpc.StatusCode.INTERNAL),
    "internal": Status(500, grpc.StatusCode.INTERNAL),
    "unavailable": Status(503, grpc.StatusCode.UNAVAILABLE),
    "deadline_exceeded": Status(504, grpc.StatusCode.DEADLINE_EXCEEDED),
}


def status_of(error: StrataError) -> Status:
    return ERROR_TABLE.get(error.code, ERROR_TABLE["internal"])


def code_for_grpc(status: grpc.StatusCode) -> str:
    """The code for a status the gRPC runtime raised itself (no envelope attached).

    Clients use it for errors that never reached Strata's handlers: a message
    over the size limit, a deadline that passed in flight.
    """
    for code, row in ERROR_TABLE.items():
        if row.grpc == status:
            return code
    return "internal"


def as_strata_error(exc: BaseException) -> StrataError:
    """Strata errors pass through; anything else is logged and hidden behind ``internal``."""
    if isinstance(exc, StrataError):
        return exc
    log.exception("unexpected error", exc_info=exc)
    return StrataError("internal error")


def envelope(error: StrataError) -> dict[str, Any]:
    """The JSON envelope: the same dict on REST and in gRPC trailing metadata."""
    return message_to_json(error_message(error))


def envelope_bytes(error: StrataError) -> bytes:
    return orjson.dumps(envelope(error))
