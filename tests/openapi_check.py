"""Validate JSON bodies against the schemas of the OpenAPI document (unit and e2e tests)."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS30Validator

from strata.transport.openapi import openapi_document
from strata.transport.operations import ROUTES

DOCUMENT = openapi_document(ROUTES)


def _schema(path: str, method: str, status: str, request: bool) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method.lower()]
    holder = operation["requestBody"] if request else operation["responses"][status]
    schema: dict[str, Any] = holder["content"]["application/json"]["schema"]
    return {**schema, "components": DOCUMENT["components"]}


def check_response(path: str, method: str, body: Any, status: int = 200) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` matches the documented response."""
    key = "200" if status == 200 else "default"
    OAS30Validator(_schema(path, method, key, request=False)).validate(body)


def check_request(path: str, method: str, body: Any) -> None:
    OAS30Validator(_schema(path, method, "", request=True)).validate(body)
