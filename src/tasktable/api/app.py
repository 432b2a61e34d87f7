"""The ASGI application: :func:`create_app`.

Serve it with ``tasktable serve``, or mount it in your own Starlette/FastAPI app::

    from tasktable import TaskTable
    from tasktable.api import create_app

    table = TaskTable("postgresql://app@db/app")
    app.mount("/tasks-admin", create_app(table))   # API at /tasks-admin/api/v1/...

Every route but ``/api/v1/health`` needs a bearer token; requests are checked
against the published OpenAPI document before anything else happens.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from ..app import TaskTable
from ..auth.service import Identity, Principal
from ..errors import TaskTableError
from ..ops import Operations
from .http import bearer_token, check_declared_size, error_response, read_json, response_for
from .openapi import build_document
from .routes import Call, Endpoint, Param, endpoints
from .schemas import SCHEMAS
from .validation import SchemaViolation, Validator, query_value

log = logging.getLogger("tasktable.api")

API_PREFIX = "/api/v1"
#: Room for the rest of a body (name, queue, JSON punctuation) beyond the args limit.
BODY_MARGIN = 64 * 1024
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class ApiContext:
    """What every route shares: the table, its operations, identity and limits."""

    table: TaskTable
    ops: Operations
    identity: Identity
    document: dict[str, Any]
    prefix: str = API_PREFIX
    body_limit: int = 0
    validator: Validator = field(default_factory=lambda: Validator(SCHEMAS))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    messages = {
        404: "No such route; see /api/v1/openapi.json for the routes.",
        405: "This route does not take that method.",
    }
    code = codes.get(exc.status_code, "http_error")
    response = error_response(
        exc.status_code,
        code,
        messages.get(exc.status_code, str(exc.detail)),
        dict(exc.headers or {}),
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


class _Fallback(Route):
    """Anything under the API prefix that no operation takes, for every method: a JSON
    405 (with Allow) for a known path, a JSON 404 for any other path."""

    def __init__(self, path: str, api_routes: list[Route]) -> None:
        super().__init__(path, self._respond, methods=["GET"])
        self.api_routes = api_routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return (Match.FULL if match == Match.PARTIAL else match), child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        allowed = sorted(
            {
                method
                for route in self.api_routes
                if route.matches(request.scope)[0] != Match.NONE
                for method in route.methods or ()
            }
        )
        if allowed:
            return _http_error(request, HTTPException(405, headers={"Allow": ", ".join(allowed)}))
        return _http_error(request, HTTPException(404))


def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("Unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "Unexpected server error; it was logged.")


def _check_params(
    ctx: ApiContext, endpoint: Endpoint, request: Request
) -> tuple[dict[str, Any], dict[str, Any]]:
    check = ctx.validator.check
    path: dict[str, Any] = {}
    query: dict[str, Any] = {}
    known = {p.name: p for p in endpoint.params}
    for param in endpoint.params:
        if param.location == "path":
            value = request.path_params[param.name]
            path[param.name] = check(value, param.schema, f"Path parameter {param.name!r}")
    seen = request.query_params.multi_items()
    unknown = sorted({k for k, _ in seen if k not in known or known[k].location != "query"})
    if unknown:
        names = ", ".join(repr(k[:50]) for k in unknown[:5])
        allowed = ", ".join(p.name for p in endpoint.params if p.location == "query") or "none"
        raise SchemaViolation(f"Unknown query parameter(s) {names}; this route takes: {allowed}.")
    for name in dict.fromkeys(k for k, _ in seen):
        param = known[name]
        values = [v for k, v in seen if k == name]
        schema = ctx.validator.resolve(param.schema)
        where = f"Query parameter {name!r}"
        if schema.get("type") == "array":
            items = ctx.validator.resolve(schema["items"])
            raw: Any = [query_value(v, items, where) for v in values]
        else:
            if len(values) > 1:
                raise SchemaViolation(f"{where} is given more than once.")
            raw = query_value(values[0], schema, where)
        query[name] = check(raw, param.schema, where)
    return path, query


def _endpoint(ctx: ApiContext, endpoint: Endpoint) -> Any:
    async def handle(request: Request) -> Response:
        try:
            if endpoint.body:
                check_declared_size(request, ctx.body_limit)
            principal: Principal | None = None
            if endpoint.permission is not None:
                token = bearer_token(request)
                principal = await run_in_threadpool(ctx.identity.authenticate_token, token)
                principal.require(endpoint.permission)
            path, query = _check_params(ctx, endpoint, request)
            body = None
            if endpoint.body:
                raw = await read_json(request, ctx.body_limit)
                body = ctx.validator.check(raw, {"$ref": endpoint.body}, "The body")
            root = str(request.scope.get("root_path", "")).rstrip("/")
            call = Call(principal=principal, path=path, query=query, body=body, root_path=root)
            response = await run_in_threadpool(endpoint.run, ctx, call)
        except TaskTableError as exc:
            response = response_for(exc)
        except Exception as exc:  # a bug: answer JSON, log the traceback, leak nothing
            response = _server_error(request, exc)
        response.headers.update(_SECURITY_HEADERS)
        return response

    handle.__name__ = endpoint.operation_id
    return handle


def create_app(
    table: TaskTable | None = None,
    *,
    identity: Identity | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    debug: bool = False,
) -> Starlette:
    """The tasktable REST API as an ASGI app.

    ``table`` defaults to ``TaskTable()`` from the environment
    (``TASKTABLE_DATABASE_URL``, ``TASKTABLE_HANDLERS``...), closed when the app
    shuts down; a table you pass stays yours to close. ``extra_routes`` are
    added after the API's (the dashboard mounts itself there).
    """
    owned = table is None
    table = table if table is not None else TaskTable()
    table_ref: TaskTable = table
    table_endpoints = endpoints(API_PREFIX)
    ctx = ApiContext(
        table=table_ref,
        ops=Operations(table_ref, remote=True),
        identity=identity or Identity(table_ref),
        document=build_document(table_endpoints),
        body_limit=table_ref.settings.max_args_bytes + BODY_MARGIN,
    )
    api_routes = [Route(e.route, _endpoint(ctx, e), methods=[e.method]) for e in table_endpoints]
    routes: list[BaseRoute] = list(api_routes)
    # Anything else under the prefix is a JSON 404 or 405, whatever extra_routes hold.
    routes.append(_Fallback(API_PREFIX + "/{rest:path}", api_routes))
    routes.extend(extra_routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                table_ref.close()

    app = Starlette(
        debug=debug,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.tasktable = ctx
    return app


__all__ = ["API_PREFIX", "ApiContext", "Param", "create_app"]
