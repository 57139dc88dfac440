"""Transports behind the client: each turns a request message into a response message or a StrataError.

Both send the caller's request id, if any, and hand back the one the server
answered with (REST: the ``X-Request-Id`` header; gRPC: ``x-request-id``
trailing metadata), on answers and on errors alike.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeVar

import grpc
import requests
from google.protobuf import json_format
from google.protobuf.message import Message

from strata_client._errors import StrataError

M = TypeVar("M", bound=Message)

ROUTES = {
    "ClassifyLifecycle": "/v1/lifecycle:classify",
    "AssignSegment": "/v1/segment:assign",
    "EvaluateIncentive": "/v1/incentive:evaluate",
    "RecommendIntervention": "/v1/intervention:recommend",
    "Decide": "/v1/decide",
    "DecideBatch": "/v1/decide:batch",
}
ERROR_METADATA_KEY = "strata-error-bin"
#: The header (REST) and metadata key (gRPC) a request id travels in, both ways.
REQUEST_ID_KEY = "x-request-id"


class Backend(Protocol):
    def call(
        self, method: str, request: Message, response: M, timeout: float, request_id: str | None = None
    ) -> tuple[M, str | None]:
        """The answer, and the request id the server answered with (else ``request_id``)."""
        ...

    def close(self) -> None: ...


class RestBackend:
    """JSON over HTTP: bodies are the protobuf JSON mapping of the same messages."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(
        self, method: str, request: Message, response: M, timeout: float, request_id: str | None = None
    ) -> tuple[M, str | None]:
        body = json_format.MessageToJson(request, preserving_proto_field_name=True)
        headers = {REQUEST_ID_KEY: request_id} if request_id else None
        try:
            reply = self.session.post(
                self.base_url + ROUTES[method], data=body, headers=headers, timeout=timeout
            )
        except requests.Timeout as exc:
            raise StrataError("deadline_exceeded", str(exc), request_id=request_id) from None
        except requests.ConnectionError as exc:
            raise StrataError("unavailable", str(exc), request_id=request_id) from None
        answered = reply.headers.get(REQUEST_ID_KEY) or request_id
        if reply.status_code >= 400:
            raise _rest_error(reply, answered)
        return json_format.Parse(reply.text, response, ignore_unknown_fields=True), answered

    def close(self) -> None:
        self.session.close()


def _rest_error(reply: requests.Response, request_id: str | None) -> StrataError:
    try:
        envelope = reply.json()
        return StrataError(
            envelope["code"], envelope.get("message", ""), envelope.get("errors"), request_id=request_id
        )
    except (ValueError, KeyError, TypeError):
        code = "unavailable" if reply.status_code in (502, 503, 504) else "internal"
        return StrataError(code, f"HTTP {reply.status_code}", request_id=request_id)


class GrpcBackend:
    """gRPC with the generated stubs; status codes become the same stable codes as REST."""

    def __init__(self, target: str, token: str | None = None) -> None:
        self.channel = grpc.insecure_channel(target)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def call(
        self, method: str, request: Message, response: M, timeout: float, request_id: str | None = None
    ) -> tuple[M, str | None]:
        rpc = self.channel.unary_unary(
            f"/strata.v1.DecisionService/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=type(response).FromString,
        )
        metadata = (*self.metadata, (REQUEST_ID_KEY, request_id)) if request_id else self.metadata
        try:
            result: M
            result, call = rpc.with_call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            raise _grpc_error(exc, request_id) from None
        return result, _trailer(call, REQUEST_ID_KEY) or request_id

    def close(self) -> None:
        self.channel.close()


def _trailer(call: Any, key: str) -> Any:
    """A trailing metadata value of a finished call (``str``, or ``bytes`` for a ``-bin`` key), or None."""
    return next((value for name, value in call.trailing_metadata() or () if name == key), None)


def _grpc_error(exc: grpc.RpcError, request_id: str | None) -> StrataError:
    call: Any = exc
    answered = _trailer(call, REQUEST_ID_KEY) or request_id
    envelope = _trailer(call, ERROR_METADATA_KEY)
    if envelope is not None:
        try:
            fields = json.loads(envelope)
            return StrataError(
                fields["code"], fields.get("message", ""), fields.get("errors"), request_id=answered
            )
        except (ValueError, KeyError, TypeError):
            pass
    return StrataError(call.code().name.lower(), call.details() or "", request_id=answered)
