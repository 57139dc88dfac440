"""The gRPC transport: the RPCs of ``operations.ROUTES``, health, reflection.

Thin on purpose: a handler checks the ``authorization`` metadata (``Bearer
<token>``), turns the call's remaining time into a deadline, calls the
shared operation, and on failure sets the status from the one
error table with the JSON envelope in trailing metadata (``strata-error-bin``)
so gRPC callers get the same error document as REST callers. The request id
(``x-request-id`` metadata, or a new one) goes back in the trailing metadata,
answer or error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from strata import metrics
from strata.config import DEFAULT_GRPC_WORKERS
from strata.decisions import deadline_after
from strata.errors import InvalidArgument, Problem
from strata.transport.context import REQUEST_ID_KEY, Context, request_id
from strata.transport.errors import GRPC_ERROR_KEY, as_strata_error, envelope_bytes, status_of, summary
from strata.transport.operations import (
    DECISION_SERVICE,
    PREVIEW_SERVICE,
    PROFILE_SERVICE,
    REGISTRY_SERVICE,
    ROUTES,
    Operations,
    Route,
)

SERVICES = (DECISION_SERVICE, PROFILE_SERVICE, REGISTRY_SERVICE, PREVIEW_SERVICE)


@dataclass(frozen=True)
class Malformed:
    """A request whose bytes do not decode: answered as invalid_argument, like invalid JSON on REST.

    (A deserializer that raises would make gRPC answer INTERNAL instead.)
    """

    error: InvalidArgument


def _deserializer(message_type: type[Message]) -> Callable[[bytes], Message | Malformed]:
    def deserialize(data: bytes) -> Message | Malformed:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            name = message_type.DESCRIPTOR.name
            problem = Problem(str(exc) or "cannot decode", field="body")
            return Malformed(InvalidArgument(f"the request is not a valid {name}", [problem]))

    return deserialize


def _metadata(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """The ``authorization`` and ``x-request-id`` metadata values, as REST's headers of the same names."""
    authorization = given_id = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode()
        elif key == REQUEST_ID_KEY:
            given_id = value if isinstance(value, str) else value.decode()
    return authorization, given_id


def _handler(
    operations: Operations, route: Route
) -> tuple[
    Callable[[Message | Malformed, grpc.ServicerContext], Message | bytes], Callable[[Any], bytes] | None
]:
    """The RPC's handler and what serialises its answers: the route's message, or nothing when the
    operation gives the bytes itself (``Operations.wire_handler``: grpcio sends them as they are)."""
    wire = operations.wire_handler(route.rpc)
    answer: Callable[[Any, Context], Message | bytes] = wire or partial(operations.call, route.rpc)

    def handle(request: Message | Malformed, context: grpc.ServicerContext) -> Message | bytes:
        remaining: float | None = context.time_remaining()
        authorization, given_id = _metadata(context)
        call_id = ""  # an invalid id is not echoed
        try:
            call_id = request_id(given_id)
            principal = operations.authorize(route.rpc, authorization)
            if isinstance(request, Malformed):
                raise request.error
            response = answer(request, Context(deadline_after(remaining), principal, call_id))
            context.set_trailing_metadata(((REQUEST_ID_KEY, call_id),))
            return response
        except Exception as exc:
            error = as_strata_error(exc)
            metrics.ERRORS.labels(error.code).inc()
            trailers: tuple[tuple[str, str | bytes], ...] = ((GRPC_ERROR_KEY, envelope_bytes(error)),)
            if call_id:
                trailers += ((REQUEST_ID_KEY, call_id),)
            context.set_trailing_metadata(trailers)
            context.abort(status_of(error).grpc, summary(error))

    handle.__name__ = route.rpc
    return handle, None if wire else route.response.SerializeToString


def add_services(server: grpc.Server, operations: Operations) -> None:
    """Register every RPC of ``ROUTES`` on ``server``, grouped by service."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for route in ROUTES:
        handle, serialize = _handler(operations, route)
        by_service.setdefault(route.service, {})[route.rpc] = grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=_deserializer(route.request), response_serializer=serialize
        )
    for service, handlers in by_service.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)


def create_server(
    operations: Operations,
    address: str = "[::]:0",
    *,
    health_servicer: health.HealthServicer | None = None,
    max_workers: int = DEFAULT_GRPC_WORKERS,
) -> tuple[grpc.Server, int]:
    """A configured, not yet started server and the port it bound (``:0`` picks one).

    ``max_workers`` threads answer calls, health checks included (``STRATA_GRPC_WORKERS``).

    The standard health service reports SERVING for "" and every service of
    ``SERVICES``; pass your own ``health_servicer`` to follow readiness with
    ``set_serving`` (as ``strata.server.serve`` does) and to turn NOT_SERVING
    before a graceful stop (see ``stop``). Messages are limited to
    ``operations.limits.max_message_bytes`` (RESOURCE_EXHAUSTED beyond).
    """
    max_message_bytes = operations.limits.max_message_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="strata-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    add_services(server, operations)
    health_servicer = health_servicer or health.HealthServicer()
    set_serving(health_servicer, True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC address {address!r}")
    return server, port


def set_serving(health_servicer: health.HealthServicer, serving: bool, previous: bool | None = None) -> bool:
    """Report every service SERVING or NOT_SERVING (only when that changed since ``previous``)."""
    if serving != previous:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICES):
            health_servicer.set(name, status)
    return serving


def stop(
    server: grpc.Server, grace: float, health_servicer: health.HealthServicer | None = None
) -> threading.Event:
    """Stop taking calls at once; the event is set when in-flight ones finish (``grace`` at most).

    Health turns NOT_SERVING first so load balancers stop routing here. Not
    waiting here lets the caller stop its other listeners meanwhile.
    """
    if health_servicer is not None:
        health_servicer.enter_graceful_shutdown()
    return server.stop(grace)
