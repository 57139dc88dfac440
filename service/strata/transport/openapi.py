"""The OpenAPI 3 document, generated from the proto descriptors and the route table.

Written by hand it would drift from the wire messages; generated, it cannot.
Schemas follow the protobuf JSON mapping as the REST transport prints it:
proto field names, int64 as strings, Timestamps as RFC 3339 strings,
Structs as free-form objects, maps as objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from strata.access.tokens import Role
from strata.api.strata.v1 import decision_pb2 as pb
from strata.transport.operations import Route

_REF = "#/components/schemas/"
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    **{
        t: {"type": "integer", "format": "int32"}
        for t in (
            FieldDescriptor.TYPE_INT32,
            FieldDescriptor.TYPE_SINT32,
            FieldDescriptor.TYPE_SFIXED32,
        )
    },
    **{
        t: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}
        for t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32)
    },
    # The JSON mapping prints 64-bit integers as decimal strings.
    **{
        t: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        for t in (
            FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_SFIXED64,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_FIXED64,
        )
    },
}


class _Schemas:
    """Component schemas, one per message, collected as they are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: messages may refer to themselves
            self.components[name] = self._message(descriptor)
        return {"$ref": _REF + name}

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {field.name: self._field(field) for field in descriptor.fields}
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        oneofs = [o for o in descriptor.oneofs if not o.name.startswith("_")]  # "_x": proto3 optional
        if oneofs:
            schema["description"] = "; ".join(
                f"at most one of {', '.join(f.name for f in oneof.fields)}" for oneof in oneofs
            )
        return schema

    def _field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
        return dict(_SCALARS[field.type])


def _path_schema(schemas: _Schemas, request: Descriptor, name: str) -> dict[str, Any]:
    field = request.fields_by_name[name]
    if field.type == FieldDescriptor.TYPE_STRING:
        return {"type": "string", "minLength": 1}
    return schemas._single(field)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _without(schemas: _Schemas, descriptor: Descriptor, names: list[str]) -> dict[str, Any]:
    """A request body schema: the message minus the fields bound from the path."""
    ref = schemas.ref(descriptor)
    if not names:
        return ref
    body = dict(schemas.components[descriptor.full_name])
    body["properties"] = {k: v for k, v in body["properties"].items() if k not in names}
    return body


def openapi_document(
    routes: Iterable[Route], *, title: str = "Strata", version: str = "v1"
) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``routes`` (plus the health endpoints)."""
    schemas = _Schemas()
    error = {
        "description": "An error: its stable code, message and located problems",
        "content": _json(schemas.ref(pb.Error.DESCRIPTOR)),
    }
    timeout = {
        "name": "Grpc-Timeout",
        "in": "header",
        "required": False,
        "description": "The caller's deadline, as in gRPC: digits and a unit (H, M, S, m, u, n), e.g. 250m",
        "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"},
    }
    request_id = {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "description": "Names the call in the decision log and comes back in the same header; made up if absent",
        "schema": {"type": "string", "pattern": "^[!-~]{1,128}$"},
    }
    echoed = {"X-Request-Id": {"description": "The call's request id", "schema": {"type": "string"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        request = cast(Descriptor, route.request.DESCRIPTOR)
        operation: dict[str, Any] = {
            "operationId": route.rpc,
            "summary": route.summary,
            "tags": [route.service.rsplit(".", 1)[-1]],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": _path_schema(schemas, request, name)}
                for name in route.path_params
            ]
            + [
                {"name": name, "in": "query", "required": False, "schema": schemas._single(field)}
                for name, field in route.query_params.items()
            ]
            + [timeout, request_id],
            # Publishers always authenticate; readers when the server requires tokens.
            "security": [{"bearer": []}] if route.role is Role.PUBLISHER else [{}, {"bearer": []}],
            "responses": {
                "200": {
                    "description": "OK",
                    "headers": echoed,
                    "content": _json(schemas.ref(cast(Descriptor, route.response.DESCRIPTOR))),
                },
                "default": error,
            },
        }
        if route.body == "*":
            body = _without(schemas, request, route.path_params)
            operation["requestBody"] = {"required": True, "content": _json(body)}
        elif route.body:
            operation["requestBody"] = {
                "required": True,
                "content": _json(schemas._field(request.fields_by_name[route.body])),
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    status = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    for path, what in (("/healthz", "The process is alive"), ("/readyz", "The server can answer decisions")):
        paths[path] = {
            "get": {
                "operationId": path.strip("/"),
                "summary": what,
                "tags": ["Health"],
                "responses": {"200": {"description": "OK", "content": _json(status)}, "default": error},
            }
        }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics: decisions, errors, latency, decision log, shadows",
            "tags": ["Health"],
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
            },
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Decisions about users from versioned rule files. Bodies are the protobuf JSON "
                "mapping of the strata.v1 messages (proto/strata/v1), as gRPC-gateway maps them."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `strata tokens create`; publisher or reader role",
                }
            },
        },
    }
