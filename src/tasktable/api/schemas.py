"""The JSON schemas of the REST API (OpenAPI 3.0 components).

The server validates requests against these very dictionaries (see
``validation.py``) and publishes them in ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from ..core.status import TaskStatus
from ..core.validation import (
    MAX_ATTEMPTS_LIMIT,
    MAX_NAME_LENGTH,
    MAX_QUEUE_LENGTH,
    MAX_UNIQUE_KEY_LENGTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
)
from ..ops import BULK_LIMIT, MAX_BUCKETS, MAX_PAGE_SIZE, PATCHABLE
from ..storage.base import SORT_FIELDS

MAX_ID = 2**63 - 1
MAX_DELAY = 366 * 86400  # seconds
MAX_TIMEOUT = 366 * 86400
MAX_TEXT_FILTER = 255
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
HANDLER_PATTERN = rf"^{_IDENT}(\.{_IDENT})*(:{_IDENT}(\.{_IDENT})*|\.{_IDENT})$"
QUEUE_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
NO_NUL = r"^[^\x00]*$"
#: What Python's str.strip() removes, spelled out: regex engines disagree on \s.
_SPACES = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SORT_VALUES = [f"{prefix}{field}" for field in SORT_FIELDS for prefix in ("", "-")]
STATUSES = [s.value for s in TaskStatus]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_JSON_ARGS = {
    "description": "JSON object or array passed to the handler.",
    "anyOf": [{"type": "object"}, {"type": "array"}],
}


def _new_task(when: str) -> dict[str, Any]:
    """A task to enqueue, with ``run_at`` or ``delay`` (the two are exclusive)."""
    timing = {
        "run_at": {**_TIME, "description": "Not before this time (UTC if no offset)."},
        "delay": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_DELAY,
            "description": "Not before this many seconds from now.",
        },
    }
    return {
        "type": "object",
        "title": f"NewTask ({when})",
        "required": ["handler"],
        "additionalProperties": False,
        "properties": {
            "handler": ref("HandlerPath"),
            "args": _JSON_ARGS,
            "name": ref("TaskName"),
            "queue": ref("Queue"),
            "priority": ref("Priority"),
            when: timing[when],
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT},
            "timeout": {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": MAX_TIMEOUT,
                "description": "Seconds the task may run.",
            },
            "unique_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_UNIQUE_KEY_LENGTH,
                "pattern": NO_NUL,
                "description": "No second pending or running task with this key.",
            },
        },
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    # -- errors ------------------------------------------------------------------
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine-readable: bad_request, unauthorized, forbidden, "
                        "handler_not_allowed, not_found, method_not_allowed, invalid_transition, "
                        "payload_too_large, unsupported_media_type, invalid_input, "
                        "invalid_cursor, invalid_handler, database_unavailable, schema_missing.",
                    },
                    "message": {"type": "string", "description": "One sentence for a person."},
                },
            }
        },
    },
    # -- pieces of a task --------------------------------------------------------------
    "TaskStatus": {"type": "string", "enum": STATUSES},
    "HandlerPath": {
        "type": "string",
        "minLength": 3,
        "maxLength": 255,
        "pattern": HANDLER_PATTERN,
        "x-message": "must be an import path like package.module:ClassName",
        "example": "myapp.tasks:SetMassDelivered",
    },
    "TaskName": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_NAME_LENGTH,
        "pattern": rf"^[^\x00]*[^\x00{_SPACES}][^\x00]*$",
        "x-message": "must contain a visible character and no NUL",
    },
    "Queue": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_QUEUE_LENGTH,
        "pattern": QUEUE_PATTERN,
        "x-message": "may only use letters, digits, '_', '-', '.' and ':'",
    },
    "Priority": {"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX},
    "Message": {
        "type": "object",
        "required": ["text", "level", "time"],
        "properties": {
            "text": {"type": "string"},
            "level": {"type": "string"},
            "time": _TIME,
        },
    },
    "ActionLink": {
        "type": "object",
        "required": ["text", "route_path", "route_params"],
        "properties": {
            "text": _nullable({"type": "string"}),
            "route_path": _nullable({"type": "string"}),
            "route_params": _nullable({"type": "object"}),
        },
    },
    "Progress": {
        "type": "object",
        "nullable": True,
        "required": ["done", "total"],
        "properties": {
            "done": {"type": "integer"},
            "total": _nullable({"type": "integer"}),
        },
    },
    "FileInfo": {
        "type": "object",
        "required": ["filename", "content_type", "size"],
        "properties": {
            "filename": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "created_at": _TIME,
        },
    },
    "Task": {
        "type": "object",
        "description": "One row of the task table.",
        "required": [
            "id",
            "name",
            "handler",
            "args",
            "status",
            "messages",
            "created_at",
            "executed_at",
            "finished_at",
            "action_link",
            "queue",
            "priority",
            "run_at",
            "attempts",
            "max_attempts",
            "timeout",
            "progress",
            "error",
            "worker",
            "heartbeat_at",
            "unique_key",
            "cancel_requested",
            "files",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "handler": {"type": "string"},
            "args": _JSON_ARGS,
            "status": ref("TaskStatus"),
            "messages": {"type": "array", "items": ref("Message")},
            "created_at": _TIME,
            "executed_at": _nullable(_TIME),
            "finished_at": _nullable(_TIME),
            "action_link": ref("ActionLink"),
            "queue": {"type": "string"},
            "priority": {"type": "integer"},
            "run_at": _TIME,
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "timeout": _nullable({"type": "number"}),
            "progress": ref("Progress"),
            "error": _nullable({"type": "string", "description": "Traceback of the last failure."}),
            "worker": _nullable({"type": "string"}),
            "heartbeat_at": _nullable(_TIME),
            "unique_key": _nullable({"type": "string"}),
            "cancel_requested": {"type": "boolean"},
            "files": {"type": "array", "items": ref("FileInfo")},
        },
    },
    "TaskPage": {
        "type": "object",
        "required": ["tasks", "next_cursor"],
        "properties": {
            "tasks": {"type": "array", "items": ref("Task")},
            "next_cursor": _nullable(
                {"type": "string", "description": "Pass as `cursor` for the next page."}
            ),
        },
    },
    "FileList": {
        "type": "object",
        "required": ["files"],
        "properties": {"files": {"type": "array", "items": ref("FileInfo")}},
    },
    # -- requests -------------------------------------------------------------------
    "NewTask": {
        "description": "A task to enqueue. The handler must match TASKTABLE_HANDLERS "
        "(checked on its text, before anything is imported). Give run_at or delay, not both.",
        "anyOf": [_new_task("run_at"), _new_task("delay")],
        "x-message": "Give either run_at or delay, not both.",
    },
    "TaskChanges": {
        "type": "object",
        "description": "Fields to change on a pending task.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "name": ref("TaskName"),
            "priority": ref("Priority"),
            "run_at": _TIME,
            "queue": ref("Queue"),
        },
    },
    "TaskFilter": {
        "type": "object",
        "description": "Which tasks; every given field must match. Empty matches all.",
        "additionalProperties": False,
        "properties": {
            "status": {"type": "array", "maxItems": 5, "items": ref("TaskStatus")},
            "name": {
                "type": "string",
                "maxLength": MAX_TEXT_FILTER,
                "pattern": NO_NUL,
                "description": "Name contains this text (case-insensitive, literal).",
            },
            "handler": ref("HandlerPath"),
            "queue": {"type": "array", "maxItems": 100, "items": ref("Queue")},
            "created_after": _TIME,
            "created_before": _TIME,
            "finished_after": _TIME,
            "finished_before": _TIME,
            "search": {
                "type": "string",
                "maxLength": MAX_TEXT_FILTER,
                "pattern": NO_NUL,
                "description": "Name, handler or args contain this text (literal).",
            },
        },
    },
    "BulkRequest": {
        "description": "Either `ids`, or a `filter` (with at most `limit` tasks acted on, "
        "lowest ids first).",
        "x-message": "Give either ids or a filter (with an optional limit), not both.",
        "anyOf": [
            {
                "type": "object",
                "required": ["ids"],
                "additionalProperties": False,
                "properties": {
                    "ids": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": BULK_LIMIT,
                        "items": _ID,
                    }
                },
            },
            {
                "type": "object",
                "required": ["filter"],
                "additionalProperties": False,
                "properties": {
                    "filter": ref("TaskFilter"),
                    "limit": {"type": "integer", "minimum": 1, "maximum": BULK_LIMIT},
                },
            },
        ],
    },
    "BulkResult": {
        "type": "object",
        "required": ["action", "ids", "count", "stop_requested", "limit", "limit_reached"],
        "properties": {
            "action": {"type": "string", "enum": ["retry", "cancel", "delete"]},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "count": {"type": "integer"},
            "stop_requested": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Running tasks asked to stop (cancel only).",
            },
            "limit": {"type": "integer"},
            "limit_reached": {
                "type": "boolean",
                "description": "True when the filter may match more tasks: call again.",
            },
        },
    },
    # -- stats and health ------------------------------------------------------------
    "Counts": {
        "type": "object",
        "required": STATUSES,
        "properties": {s: {"type": "integer"} for s in STATUSES},
        "additionalProperties": {"type": "integer"},
    },
    "Stats": {
        "type": "object",
        "required": [
            "by_status",
            "by_queue",
            "total",
            "oldest_pending_age_seconds",
            "finished_last_minute",
            "finished_last_hour",
            "now",
            "bucket_seconds",
            "throughput",
            "workers_alive",
            "workers",
        ],
        "properties": {
            "by_status": ref("Counts"),
            "by_queue": {"type": "object", "additionalProperties": ref("Counts")},
            "total": {"type": "integer"},
            "oldest_pending_age_seconds": _nullable(
                {"type": "number", "description": "Age of the oldest due pending task."}
            ),
            "finished_last_minute": {"type": "integer"},
            "finished_last_hour": {"type": "integer"},
            "now": _TIME,
            "bucket_seconds": {"type": "integer"},
            "throughput": {
                "type": "array",
                "description": "Finished tasks per bucket, oldest first; the last is partial.",
                "items": {
                    "type": "object",
                    "required": ["start", "success", "error"],
                    "properties": {
                        "start": _TIME,
                        "success": {"type": "integer"},
                        "error": {"type": "integer"},
                    },
                },
            },
            "workers_alive": {"type": "integer"},
            "workers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "hostname", "pid", "slots", "queues", "alive"],
                    "properties": {
                        "id": {"type": "string"},
                        "hostname": {"type": "string"},
                        "pid": {"type": "integer"},
                        "slots": {"type": "integer"},
                        "queues": {"type": "array", "items": {"type": "string"}},
                        "started_at": _nullable(_TIME),
                        "heartbeat_at": _nullable(_TIME),
                        "alive": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "database"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": {"type": "string", "enum": ["up", "down"]},
            "version": {"type": "string"},
        },
    },
}

# Parameters, as (name, schema, description); arrays are repeated (?status=a&status=b).
TASK_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
LIST_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("status", {"type": "array", "maxItems": 5, "items": ref("TaskStatus")}, "Any of these."),
    (
        "name",
        {"type": "string", "maxLength": MAX_TEXT_FILTER, "pattern": NO_NUL},
        "Name contains this text (case-insensitive; % and _ match literally).",
    ),
    ("handler", ref("HandlerPath"), "Exact handler path."),
    ("queue", {"type": "array", "maxItems": 100, "items": ref("Queue")}, "Any of these queues."),
    ("created_after", _TIME, "Created at or after."),
    ("created_before", _TIME, "Created before."),
    ("finished_after", _TIME, "Finished at or after."),
    ("finished_before", _TIME, "Finished before."),
    (
        "search",
        {"type": "string", "maxLength": MAX_TEXT_FILTER, "pattern": NO_NUL},
        "Name, handler or args contain this text.",
    ),
    (
        "sort",
        {"type": "string", "enum": SORT_VALUES, "default": "-id"},
        "Field to sort by; a leading '-' sorts descending.",
    ),
    (
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
        "Page size.",
    ),
    (
        "cursor",
        {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": r"^[A-Za-z0-9_\-]+$"},
        "The next_cursor of the previous page (same filters and sort).",
    ),
]
STATS_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    (
        "bucket_seconds",
        {"type": "integer", "minimum": 1, "maximum": 86400, "default": 60},
        "Width of a throughput bucket in seconds.",
    ),
    (
        "buckets",
        {"type": "integer", "minimum": 1, "maximum": MAX_BUCKETS, "default": 60},
        "How many buckets, ending with the current one.",
    ),
]
PATCH_FIELDS = PATCHABLE
