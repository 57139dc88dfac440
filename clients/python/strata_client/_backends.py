"""Transports behind the client: each turns a request message into a response message or a StrataError."""

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


class Backend(Protocol):
    def call(self, method: str, request: Message, response: M, timeout: float) -> M: ...

    def close(self) -> None: ...


class RestBackend:
    """JSON over HTTP: bodies are the protobuf JSON mapping of the same messages."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, request: Message, response: M, timeout: float) -> M:
        body = json_format.MessageToJson(request, preserving_proto_field_name=True)
        try:
            reply = self.session.post(self.base_url + ROUTES[method], data=body, timeout=timeout)
        except requests.Timeout as exc:
            raise StrataError("deadline_exceeded", str(exc)) from None
        except requests.ConnectionError as exc:
            raise StrataError("unavailable", str(exc)) from None
        if reply.status_code >= 400:
            raise _rest_error(reply)
        return json_format.Parse(reply.text, response, ignore_unknown_fields=True)

    def close(self) -> None:
        self.session.close()


def _rest_error(reply: requests.Response) -> StrataError:
    try:
        envelope = reply.json()
        return StrataError(envelope["code"], envelope.get("message", ""), envelope.get("errors"))
    except (ValueError, KeyError, TypeError):
        code = "unavailable" if reply.status_code in (502, 503, 504) else "internal"
        return StrataError(code, f"HTTP {reply.status_code}")


class GrpcBackend:
    """gRPC with the generated stubs; status codes become the same stable codes as REST."""

    def __init__(self, target: str, token: str | None = None) -> None:
        self.channel = grpc.insecure_channel(target)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def call(self, method: str, request: Message, response: M, timeout: float) -> M:
        rpc = self.channel.unary_unary(
            f"/strata.v1.DecisionService/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=type(response).FromString,
        )
        try:
            result: M = rpc(request, timeout=timeout, metadata=self.metadata)
            return result
        except grpc.RpcError as exc:
            raise _grpc_error(exc) from None

    def close(self) -> None:
        self.channel.close()


def _grpc_error(exc: grpc.RpcError) -> StrataError:
    call: Any = exc
    for key, value in call.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY:
            try:
                envelope = json.loads(value)
                return StrataError(envelope["code"], envelope.get("message", ""), envelope.get("errors"))
            except (ValueError, KeyError, TypeError):
                break
    return StrataError(call.code().name.lower(), call.details() or "")
