"""HTTP plumbing of the API: JSON errors, bearer tokens, and bounded JSON bodies."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..auth.errors import (
    IdentityConflict,
    IdentityNotFound,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)
from ..errors import (
    DatabaseError,
    HandlerError,
    HandlerNotAllowed,
    InvalidInput,
    InvalidTransition,
    SchemaMissing,
    TaskNotFound,
    TaskTableError,
)
from .validation import BadRequest, parse_json_body

log = logging.getLogger("tasktable.api")

_JSON_TYPES = ("application/json",)


class RequestRefused(TaskTableError):
    """A request refused before its content is looked at (size, media type)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def response_for(exc: TaskTableError) -> Response:
    """The HTTP answer to a tasktable error: a status, a code and its sentence."""
    if isinstance(exc, RequestRefused):
        return error_response(exc.status, exc.code, str(exc))
    if isinstance(exc, NotAuthenticated):
        return error_response(
            401, exc.code, str(exc), {"WWW-Authenticate": 'Bearer realm="tasktable"'}
        )
    if isinstance(exc, RateLimited):
        return error_response(429, exc.code, str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, PermissionDenied | HandlerNotAllowed):
        return error_response(403, exc.code, str(exc))
    if isinstance(exc, TaskNotFound | IdentityNotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, InvalidTransition | IdentityConflict):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, BadRequest):
        return error_response(400, exc.code, str(exc))
    if isinstance(exc, InvalidInput | HandlerError):
        return error_response(422, exc.code, str(exc))
    if isinstance(exc, SchemaMissing):
        log.error("API request failed: %s", exc)
        return error_response(
            503,
            "schema_missing",
            "The database has no tasktable schema or an older one; run: tasktable migrate.",
            {"Retry-After": "30"},
        )
    if isinstance(exc, DatabaseError):
        log.error("API request failed: %s", exc)  # the message hides the password
        return error_response(
            503,
            "database_unavailable",
            "The database is unavailable; try again shortly.",
            {"Retry-After": "5"},
        )
    log.error("API request failed: %s", exc)
    return error_response(422, exc.code, str(exc))


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; raises :class:`NotAuthenticated`."""
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated(
            "This route needs a bearer token: send 'Authorization: Bearer <token>' "
            "(an admin creates one with: tasktable token create --name NAME --role viewer)."
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def check_declared_size(request: Request, limit: int) -> None:
    """Refuse a body whose Content-Length is over ``limit`` without reading any of it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise RequestRefused(400, "bad_request", "The Content-Length header is not a number.")
    if int(declared) > limit:
        raise too_large(limit)


def too_large(limit: int) -> RequestRefused:
    return RequestRefused(
        413,
        "payload_too_large",
        f"The request body is larger than {limit} bytes (the args limit, "
        "TASKTABLE_MAX_ARGS_BYTES, plus a margin).",
    )


def check_json_type(request: Request) -> None:
    raw = request.headers.get("content-type")
    media, _, params = (raw or "").partition(";")
    if media.strip().lower() not in _JSON_TYPES:
        raise RequestRefused(
            415,
            "unsupported_media_type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise RequestRefused(415, "unsupported_media_type", "JSON bodies must be UTF-8.")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON: media type checked, size counted while it streams in."""
    check_json_type(request)
    check_declared_size(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return parse_json_body(b"".join(chunks))
