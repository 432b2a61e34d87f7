"""The grid, the task page, their actions, file downloads and the live-refresh JSON.

Every view is a client of :class:`tasktable.ops.Operations`, as the REST API is.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse, Response

from ..core.status import RETRYABLE, TaskStatus
from ..core.task import Task
from ..errors import InvalidInput
from ..ops import BulkAction, BulkResult
from .context import Dashboard, Req
from .query import FILTER_KEYS, SORTABLE, GridQuery
from .web import local_path

ACTIONS: tuple[BulkAction, ...] = ("retry", "cancel", "delete")
LIVE_LIMIT = 200
STATUSES = tuple(s.value for s in TaskStatus)


def _task_id(req: Req) -> int:
    raw = str(req.request.path_params.get("task_id", ""))
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{raw[:30]!r} is not a task id.")
    return int(raw)


# -- the grid ------------------------------------------------------------------------------
def grid(dash: Dashboard, req: Req) -> Response:
    query = GridQuery.parse(req.request.query_params.multi_items(), dash.config.page_size)
    ops = dash.ops
    problems = list(query.problems)
    task_query = query.task_query()
    try:
        page = ops.list_tasks(task_query, sort=query.sort, limit=query.limit, cursor=query.cursor)
    except InvalidInput as exc:  # a stale or edited cursor: show the first page
        problems.append(str(exc))
        query = replace(query, cursor="", page=1)
        page = ops.list_tasks(task_query, sort=query.sort, limit=query.limit)
    cap = dash.config.count_cap
    counts = ops.status_counts(task_query, cap=cap)
    total = sum(counts.values())
    root = req.root
    return req.page(
        dash,
        "grid.html",
        title="Tasks",
        nav="tasks",
        query=query,
        tasks=page.tasks,
        next_url=query.url(root, cursor=page.next_cursor, page=query.page + 1)
        if page.next_cursor
        else None,
        first_url=query.url(root) if query.cursor else None,
        counts=counts,
        total=total,
        total_label=_total_label(counts, cap),
        action_base=dash.config.action_base_url or f"{root}/",
        cap=cap,
        statuses=STATUSES,
        sortable=SORTABLE,
        problems=problems,
        bulk_limit=dash.config.bulk_limit,
        filter_params=query.params(),
        filter_keys=FILTER_KEYS,
        now=datetime.now(UTC),
    )


def _total_label(counts: dict[str, int], cap: int) -> str:
    """The sum of the counts; "N+" when a count stopped at the cap."""
    if any(n > cap for n in counts.values()):
        return f"{sum(min(n, cap) for n in counts.values()):,}+"
    return f"{sum(counts.values()):,}"


# -- one task ------------------------------------------------------------------------------
def task_page(dash: Dashboard, req: Req) -> Response:
    task = dash.ops.show(_task_id(req))
    base = dash.config.action_base_url or f"{req.root}/"
    return req.page(
        dash,
        "task.html",
        title=f"#{task.id} {task.name}",
        nav="tasks",
        task=task,
        can_retry=task.status in RETRYABLE,
        can_cancel=task.status in (TaskStatus.PENDING, TaskStatus.RUNNING),
        action_base=base,
        now=datetime.now(UTC),
        back=local_path(req.request, req.request.query_params.get("back")),
    )


def download(dash: Dashboard, req: Req) -> Response:
    filename = str(req.request.path_params.get("filename", ""))
    meta, data = dash.ops.read_file(_task_id(req), filename)
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in meta.filename
    )
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(meta.filename)}",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


# -- actions ---------------------------------------------------------------------------------
def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def task_action(action: BulkAction) -> Any:
    def act(dash: Dashboard, req: Req) -> Response:
        task_id = _task_id(req)
        ops = dash.ops
        target = req.form.get("next") or f"{req.root}/tasks/{task_id}"
        if action == "retry":
            task = ops.retry(task_id)
            notice = f'"{task.name}" (#{task.id}) will run again in the background.'
        elif action == "cancel":
            task = ops.cancel(task_id)
            notice = (
                f'"{task.name}" (#{task.id}) was asked to stop; it ends cancelled when it does.'
                if task.status is TaskStatus.RUNNING
                else f'"{task.name}" (#{task.id}) was cancelled.'
            )
        else:
            name = ops.show(task_id).name
            ops.delete(task_id)
            notice = f'"{name}" (#{task_id}) was deleted.'
            target = req.form.get("next") or f"{req.root}/"
            if target.rstrip("/").endswith(f"/tasks/{task_id}"):
                target = f"{req.root}/"
        return req.redirect(dash, target, ("success", notice))

    act.__name__ = f"task_{action}"
    return act


def _bulk_notice(result: BulkResult) -> list[tuple[str, str]]:
    done = len(result.ids)
    notices: list[tuple[str, str]] = []
    if result.action == "retry":
        text = f"{_plural(done, 'task')} will run again in the background."
    elif result.action == "cancel":
        text = f"{_plural(done, 'task')} cancelled."
        if result.stop_requested:
            text += f" {_plural(len(result.stop_requested), 'running task')} asked to stop."
    else:
        text = f"{_plural(done, 'task')} deleted."
    touched = done + len(result.stop_requested)
    notices.append(("success" if touched else "info", text))
    if result.limit_reached:
        notices.append(
            (
                "warning",
                f"Stopped at the limit of {result.limit:,} tasks; more may match. "
                "Run the action again for the next ones.",
            )
        )
    return notices


def bulk(dash: Dashboard, req: Req) -> Response:
    form = req.form
    action = form.get("action") or ""
    if action not in ACTIONS:
        raise InvalidInput("Choose retry, cancel or delete.")
    back = form.get("next") or f"{req.root}/"
    if form.get("scope") == "filter":
        pairs = [(k, v) for k in FILTER_KEYS for v in form.getlist(k)]
        query = GridQuery.parse(pairs).task_query()
        result = dash.ops.bulk(action, query=query, limit=dash.config.bulk_limit)
    else:
        raw = form.getlist("ids")
        if not raw:
            return req.redirect(dash, back, ("warning", "Select at least one task first."))
        if not all(i.isdigit() and len(i) <= 18 for i in raw):
            raise InvalidInput("Task ids must be whole numbers.")
        ids = sorted({int(i) for i in raw})
        result = dash.ops.bulk(action, ids=ids)
    return req.redirect(dash, back, *_bulk_notice(result))


# -- live refresh ------------------------------------------------------------------------------
def _live(task: Task) -> dict[str, Any]:
    progress = task.progress
    return {
        "status": task.status.value,
        "done": progress.done if progress else None,
        "total": progress.total if progress else None,
        "executed_at": task.executed_at.strftime("%Y-%m-%d %H:%M:%S") if task.executed_at else None,
        "finished_at": task.finished_at.strftime("%Y-%m-%d %H:%M:%S") if task.finished_at else None,
        "message": task.messages[-1].text if task.messages else None,
        "messages": len(task.messages),
        "cancel_requested": task.cancel_requested,
    }


def live(dash: Dashboard, req: Req) -> Response:
    """``live.json?ids=1,2,3``: status and progress of these tasks (GET, read only)."""
    raw = req.request.query_params.get("ids", "")
    parts = [p for p in raw.split(",") if p][:LIVE_LIMIT]
    if not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise InvalidInput("ids must be task ids separated by commas.")
    tasks = dash.ops.get_many(sorted({int(p) for p in parts}))
    return JSONResponse({"tasks": {str(t.id): _live(t) for t in tasks}})
