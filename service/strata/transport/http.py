"""The REST transport (Flask): the routes of ``operations.ROUTES``, grpc-gateway style.

A body is the protobuf JSON mapping of the RPC's request message; path
parameters (and, on routes without a body, query parameters) fill the named
fields; the response is the JSON mapping of the response message. The caller's deadline travels in the ``Grpc-Timeout``
header, as grpc-gateway forwards it; credentials in ``Authorization: Bearer
<token>``, checked before the body is read. Errors are the ``strata.v1.Error``
envelope with the status from the one error table, including the framework's
own failures (unknown route, oversized or malformed body). A call's request id
(``X-Request-Id``, or a new one) is sent back in the same header, answer or
error. ``/metrics`` is the Prometheus exposition (see ``strata.metrics``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from strata import metrics
from strata.console import Console, register_console
from strata.decisions import deadline_after
from strata.errors import InvalidArgument, NotFound, Problem, ResourceExhausted, StrataError, Unavailable
from strata.transport.context import REQUEST_ID_KEY, Context, request_id
from strata.transport.convert import json_body, message_from_dict, message_from_json, message_to_json
from strata.transport.errors import as_strata_error, envelope, status_of
from strata.transport.openapi import openapi_document
from strata.transport.operations import ROUTES, Operations, Route

_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_REQUEST_ID_HEADER = "HTTP_" + REQUEST_ID_KEY.upper().replace("-", "_")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def json_response(data: Any, status: int = 200, call_id: str | None = None) -> Response:
    """``data`` as JSON; ``call_id``: the call's request id, sent back in ``X-Request-Id``."""
    headers = [("Content-Type", "application/json")]
    if call_id:
        headers.append((REQUEST_ID_KEY, call_id))
    return Response(orjson.dumps(data), status, headers)


def error_response(error: StrataError, status: int | None = None, call_id: str | None = None) -> Response:
    response = json_response(envelope(error), status or status_of(error).http, call_id)
    if response.status_code == 401:  # RFC 9110: a 401 names the scheme to authenticate with
        response.headers["WWW-Authenticate"] = 'Bearer realm="strata"'
    return response


def parse_timeout(header: str | None) -> float | None:
    """Seconds from a ``Grpc-Timeout`` header value such as ``250m`` (None: no deadline)."""
    if header is None:
        return None
    match = _TIMEOUT.match(header.strip())
    if not match:
        raise InvalidArgument(
            "invalid Grpc-Timeout header",
            [Problem("expected 1-8 digits and a unit (H, M, S, m, u, n), e.g. 250m", field="Grpc-Timeout")],
        )
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]


def _framework_error(exc: HTTPException) -> tuple[StrataError, int]:
    """The framework's own refusals, in the envelope and codes of the error table."""
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        return ResourceExhausted(
            "the request body is too large", [Problem(f"at most {limit} bytes are accepted", field="body")]
        ), status
    if status == 404:
        return NotFound(f"no route {request.method} {request.path}"), status
    if 400 <= status < 500:  # 405, 415, ...: keep the framework's status, code as a bad request
        return InvalidArgument(exc.description or exc.name), status
    return StrataError(exc.description or exc.name), status


def _query(route: Route) -> dict[str, str]:
    """The query string as field values; a parameter the route does not take is refused."""
    fields = route.query_params
    unknown = [name for name in request.args if name not in fields]
    if unknown:
        problems = [
            Problem(f"expected one of: {', '.join(fields) or 'none'}", field=name) for name in unknown
        ]
        raise InvalidArgument("unknown query parameter", problems)
    return {fields[name].name: value for name, value in request.args.items()}


def _view(operations: Operations, route: Route) -> Callable[..., Response]:
    json_handler = operations.json_handler(route.rpc) if route.body == "*" and not route.path_params else None

    def view(**path: str) -> Response:
        headers = request.environ  # as WSGI names them: one look-up through Flask's proxy for all three
        g.request_id = call_id = request_id(headers.get(_REQUEST_ID_HEADER))
        principal = operations.authorize(route.rpc, headers.get("HTTP_AUTHORIZATION"))
        deadline = deadline_after(parse_timeout(headers.get("HTTP_GRPC_TIMEOUT")))
        if json_handler is not None:  # the whole body is the request: no path, no query parameters
            if request.query_string:  # (reading request.args builds a MultiDict, even of nothing)
                _query(route)
            data = json_body(request.get_data(cache=False))
            return json_response(json_handler(data, Context(deadline, principal, call_id)), call_id=call_id)
        message = route.request()
        if route.body == "*":
            message_from_json(request.get_data(cache=False), message)
        elif route.body:
            message_from_json(request.get_data(cache=False), getattr(message, route.body), route.body)
        message_from_dict({**_query(route), **path}, message, "the path or query string")
        return json_response(
            message_to_json(operations.call(route.rpc, message, Context(deadline, principal, call_id))),
            call_id=call_id,
        )

    view.__name__ = route.rpc
    return view


def create_app(
    operations: Operations,
    *,
    ready: Callable[[], bool] | None = None,
    console: Console | None = None,
) -> Flask:
    """The REST app. ``ready`` answers /readyz (default: rulesets are loaded); ``console``: /console.

    Bodies are limited to ``operations.limits.max_body_bytes`` (413 beyond).
    """
    app = Flask("strata")
    app.config["MAX_CONTENT_LENGTH"] = operations.limits.max_body_bytes
    document = orjson.dumps(openapi_document(ROUTES))

    for route in ROUTES:
        flask_path = re.sub(r"\{(\w+)\}", r"<\1>", route.path)
        app.add_url_rule(
            flask_path, f"{route.service}.{route.rpc}", _view(operations, route), methods=[route.method]
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        is_ready = ready() if ready is not None else operations.has_rulesets()
        if not is_ready:
            return error_response(Unavailable("not ready to serve decisions"))
        return json_response({"status": "ready"})

    @app.get("/metrics")
    def metrics_view() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(document, mimetype="application/json")

    @app.errorhandler(Exception)
    def on_error(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            error, status = _framework_error(exc)
        else:
            error, status = as_strata_error(exc), None
        metrics.ERRORS.labels(error.code).inc()
        return error_response(error, status, g.get("request_id"))  # set once the call's route began

    if console is not None:
        register_console(app, console)
    return app
