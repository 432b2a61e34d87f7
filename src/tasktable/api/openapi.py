"""The OpenAPI 3.0 document, built from the endpoint table and the schemas."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..auth.roles import Permission
from .routes import Endpoint
from .schemas import SCHEMAS, ref

_ERRORS = {
    400: ("BadRequest", "The body is not acceptable JSON (syntax, NaN, duplicate keys, depth)."),
    401: ("Unauthorized", "No bearer token, or one that is unknown or revoked."),
    403: ("Forbidden", "The token's role may not do this, or the handler is not allowed."),
    404: ("NotFound", "No such task or file."),
    409: ("Conflict", "The task's status does not allow this."),
    413: ("PayloadTooLarge", "The body is larger than the args limit plus a margin."),
    415: ("UnsupportedMediaType", "The body is not sent as application/json."),
    422: ("Unprocessable", "A field or parameter is invalid; the message names it."),
    503: ("Unavailable", "The database does not answer (only when it is down)."),
}

_ROLE = {
    None: "No token needed.",
    Permission.READ: "Any token (viewer, operator or admin).",
    Permission.ACT: "A token with the operator or admin role.",
    Permission.MANAGE: "A token with the admin role.",
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary.split(". ")[0].rstrip("."),
        "description": f"{endpoint.summary}\n\n{_ROLE[endpoint.permission]}",
        "tags": list(endpoint.tags),
    }
    if endpoint.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "description": p.description,
                "schema": p.schema,
                **({"style": "form", "explode": True} if p.location == "query" else {}),
            }
            for p in endpoint.params
        ]
    if endpoint.body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(endpoint.body)}},
        }
    ok: dict[str, Any] = {"description": "Done."}
    if endpoint.result:
        ok["content"] = {endpoint.media: {"schema": ref(endpoint.result)}}
    elif "x-result" in endpoint.extra:
        ok["content"] = {endpoint.media: {"schema": endpoint.extra["x-result"]}}
    elif endpoint.media != "application/json":
        ok["content"] = {endpoint.media: {"schema": {"type": "string", "format": "binary"}}}
    responses: dict[str, Any] = {str(endpoint.status): ok}
    codes = set(endpoint.errors)
    if endpoint.permission is not None:
        codes |= {401, 403, 503}
        op["security"] = [{"bearerAuth": []}]
    else:
        op["security"] = []
    for code in sorted(codes):
        name = _ERRORS[code][0]
        if endpoint.operation_id == "getHealth" and code == 503:
            responses["503"] = {
                "description": "The database does not answer.",
                "content": {"application/json": {"schema": ref("Health")}},
            }
            continue
        responses[str(code)] = {"$ref": f"#/components/responses/{name}"}
    op["responses"] = responses
    return op


def build_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tasktable",
            "version": __version__,
            "description": (
                "Durable background tasks kept in a database table. Every route but "
                "/health needs 'Authorization: Bearer <token>' (tasktable token create "
                "--name N --role viewer|operator|admin). Errors are JSON: "
                '{"error": {"code": ..., "message": ...}}.'
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "tasks", "description": "The task table."},
            {"name": "service", "description": "Health, statistics and this document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `tasktable token create`.",
                }
            },
            "schemas": SCHEMAS,
            "responses": {name: _error_response(text) for name, text in _ERRORS.values()},
        },
    }
