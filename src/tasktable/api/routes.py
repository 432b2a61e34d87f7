"""The REST API's operations: each one a route, a permission, parameters, a body
schema, its answers, and a function over :class:`tasktable.ops.Operations`.

``openapi.py`` publishes this table as the OpenAPI document, and ``app.py``
turns it into Starlette routes that check exactly what the document says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.responses import JSONResponse, Response

from .. import __version__
from ..auth.roles import Permission
from ..ops import BULK_LIMIT, BulkAction, TaskQuery
from . import schemas as S

if TYPE_CHECKING:
    from ..auth.service import Principal
    from .app import ApiContext


@dataclass(frozen=True)
class Call:
    """One authenticated, validated request."""

    principal: Principal | None
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any
    root_path: str = ""  # where the app is mounted ("" at the top)


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str
    location: str = "query"

    @property
    def required(self) -> bool:
        return self.location == "path"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as in the OpenAPI document: /api/v1/tasks/{task_id}
    operation_id: str
    summary: str
    run: Callable[[ApiContext, Call], Response]
    permission: Permission | None = Permission.READ
    params: tuple[Param, ...] = ()
    body: str | None = None  # a schema name
    status: int = 200
    result: str | None = None  # a schema name; None: no JSON body
    media: str = "application/json"
    errors: tuple[int, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ("tasks",)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def route(self) -> str:
        """The Starlette path (task ids must be digits)."""
        return self.path.replace("{task_id}", "{task_id:int}")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


# -- the operations ----------------------------------------------------------------------
def health(ctx: ApiContext, call: Call) -> Response:
    if ctx.ops.database_ok():
        return _json({"status": "ok", "database": "up", "version": __version__})
    return _json(
        {"status": "unavailable", "database": "down", "version": __version__},
        503,
        {"Retry-After": "5"},
    )


def openapi(ctx: ApiContext, call: Call) -> Response:
    return _json({**ctx.document, "servers": [{"url": call.root_path or "/"}]})


def _query(values: dict[str, Any]) -> TaskQuery:
    return TaskQuery(
        statuses=tuple(values.get("status", ())),
        name=values.get("name"),
        handler=values.get("handler"),
        queues=tuple(values.get("queue", ())),
        created_after=values.get("created_after"),
        created_before=values.get("created_before"),
        finished_after=values.get("finished_after"),
        finished_before=values.get("finished_before"),
        search=values.get("search"),
    )


def list_tasks(ctx: ApiContext, call: Call) -> Response:
    q = call.query
    page = ctx.ops.list_tasks(
        _query(q), sort=q.get("sort", "-id"), limit=q.get("limit", 50), cursor=q.get("cursor")
    )
    return _json({"tasks": [t.to_json() for t in page.tasks], "next_cursor": page.next_cursor})


def create_task(ctx: ApiContext, call: Call) -> Response:
    task = ctx.ops.enqueue(**call.body)
    location = f"{call.root_path}{ctx.prefix}/tasks/{task.id}"
    return _json(task.to_json(), 201, {"Location": location})


def get_task(ctx: ApiContext, call: Call) -> Response:
    return _json(ctx.ops.show(call.path["task_id"]).to_json())


def patch_task(ctx: ApiContext, call: Call) -> Response:
    return _json(ctx.ops.patch(call.path["task_id"], call.body).to_json())


def delete_task(ctx: ApiContext, call: Call) -> Response:
    ctx.ops.delete(call.path["task_id"])
    return Response(status_code=204)


def retry_task(ctx: ApiContext, call: Call) -> Response:
    return _json(ctx.ops.retry(call.path["task_id"]).to_json())


def cancel_task(ctx: ApiContext, call: Call) -> Response:
    return _json(ctx.ops.cancel(call.path["task_id"]).to_json())


def list_files(ctx: ApiContext, call: Call) -> Response:
    files = ctx.ops.files(call.path["task_id"])
    return _json(
        {
            "files": [
                {
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": f.size,
                    "created_at": f.created_at.isoformat(),
                }
                for f in files
            ]
        }
    )


def download_file(ctx: ApiContext, call: Call) -> Response:
    meta, data = ctx.ops.read_file(call.path["task_id"], call.path["filename"])
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in meta.filename
    )
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(meta.filename)}"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "X-Tasktable-Content-Type": meta.content_type,
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def _bulk(action: BulkAction) -> Callable[[ApiContext, Call], Response]:
    def run(ctx: ApiContext, call: Call) -> Response:
        body = call.body
        if "ids" in body:
            result = ctx.ops.bulk(action, ids=body["ids"])
        else:
            flt = body["filter"]
            result = ctx.ops.bulk(action, query=_query(flt), limit=body.get("limit", BULK_LIMIT))
        return _json(result.to_json())

    run.__name__ = f"bulk_{action}"
    return run


def stats(ctx: ApiContext, call: Call) -> Response:
    q = call.query
    overview = ctx.ops.stats(
        bucket_seconds=q.get("bucket_seconds", 60), buckets=q.get("buckets", 60)
    )
    return _json(overview.to_json())


# -- the table -------------------------------------------------------------------------------
_TASK_ID = Param("task_id", S.TASK_ID, "The task's id.", "path")
_FILENAME = Param(
    "filename",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "A file name the task lists.",
    "path",
)
_LIST = tuple(Param(n, s, d) for n, s, d in S.LIST_PARAMS)
_STATS = tuple(Param(n, s, d) for n, s, d in S.STATS_PARAMS)
_WRITE = Permission.ACT


def endpoints(prefix: str = "/api/v1") -> list[Endpoint]:
    p = prefix
    return [
        Endpoint(
            "GET",
            f"{p}/health",
            "getHealth",
            "Whether the server and its database answer (no token needed).",
            health,
            permission=None,
            result="Health",
            errors=(503,),
            tags=("service",),
        ),
        Endpoint(
            "GET",
            f"{p}/openapi.json",
            "getOpenAPI",
            "This OpenAPI document.",
            openapi,
            result=None,
            extra={"x-result": {"type": "object"}},
            tags=("service",),
        ),
        Endpoint(
            "GET",
            f"{p}/tasks",
            "listTasks",
            "One page of tasks matching the filters, in keyset order.",
            list_tasks,
            params=_LIST,
            result="TaskPage",
            errors=(422,),
        ),
        Endpoint(
            "POST",
            f"{p}/tasks",
            "createTask",
            "Enqueue a task (operator). Refused until TASKTABLE_HANDLERS is set; the handler "
            "path is checked against it before anything is imported.",
            create_task,
            permission=_WRITE,
            body="NewTask",
            status=201,
            result="Task",
            errors=(400, 413, 415, 422),
        ),
        Endpoint(
            "GET",
            f"{p}/tasks/{{task_id}}",
            "getTask",
            "One task with its messages, progress, error and files.",
            get_task,
            params=(_TASK_ID,),
            result="Task",
            errors=(404, 422),
        ),
        Endpoint(
            "PATCH",
            f"{p}/tasks/{{task_id}}",
            "updateTask",
            "Change the name, priority, run_at or queue of a pending task (operator).",
            patch_task,
            permission=_WRITE,
            params=(_TASK_ID,),
            body="TaskChanges",
            result="Task",
            errors=(400, 404, 409, 413, 415, 422),
        ),
        Endpoint(
            "DELETE",
            f"{p}/tasks/{{task_id}}",
            "deleteTask",
            "Delete a task and its files (operator).",
            delete_task,
            permission=_WRITE,
            params=(_TASK_ID,),
            status=204,
            errors=(404, 422),
        ),
        Endpoint(
            "POST",
            f"{p}/tasks/{{task_id}}/retry",
            "retryTask",
            "Run an error or cancelled task again (operator).",
            retry_task,
            permission=_WRITE,
            params=(_TASK_ID,),
            result="Task",
            errors=(404, 409, 422),
        ),
        Endpoint(
            "POST",
            f"{p}/tasks/{{task_id}}/cancel",
            "cancelTask",
            "Cancel a pending task; a running one is asked to stop (operator).",
            cancel_task,
            permission=_WRITE,
            params=(_TASK_ID,),
            result="Task",
            errors=(404, 409, 422),
        ),
        Endpoint(
            "GET",
            f"{p}/tasks/{{task_id}}/files",
            "listTaskFiles",
            "The files a task attached.",
            list_files,
            params=(_TASK_ID,),
            result="FileList",
            errors=(404, 422),
        ),
        Endpoint(
            "GET",
            f"{p}/tasks/{{task_id}}/files/{{filename}}",
            "downloadTaskFile",
            "Download one file of a task (always as an attachment).",
            download_file,
            params=(_TASK_ID, _FILENAME),
            media="application/octet-stream",
            errors=(404, 422),
        ),
        *(
            Endpoint(
                "POST",
                f"{p}/tasks/bulk/{action}",
                f"bulk{action.capitalize()}",
                f"{action.capitalize()} the tasks with these ids, or up to `limit` "
                f"(default {BULK_LIMIT}) tasks matching a filter (operator). Tasks whose status "
                "does not allow it are skipped.",
                _bulk(action),
                permission=_WRITE,
                body="BulkRequest",
                result="BulkResult",
                errors=(400, 413, 415, 422),
            )
            for action in ("retry", "cancel", "delete")
        ),
        Endpoint(
            "GET",
            f"{p}/stats",
            "getStats",
            "Counts by status and queue, throughput per time bucket, oldest pending age, workers.",
            stats,
            params=_STATS,
            result="Stats",
            errors=(422,),
            tags=("service",),
        ),
    ]
