"""Schemathesis hooks for the API suite (loaded with SCHEMATHESIS_HOOKS=tests.api.st_hooks).

Schemathesis' positive_data_acceptance check wants every schema-valid request
accepted (2xx, or 401/403/404/409/429). One refusal of valid-looking input is
semantic and cannot be said in a schema: a page cursor this server never
issued (``invalid_cursor``, 422). This check is the built-in one with that
single exception; the suite runs it instead of the built-in.
"""

from __future__ import annotations

import json

import schemathesis
from schemathesis import Case, CheckContext, Response

ACCEPTED = {401, 403, 404, 409, 429}
SEMANTIC_422 = {"invalid_cursor"}


@schemathesis.check
def valid_data_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if 200 <= status < 400 or status in ACCEPTED:
        return None
    if status == 422:
        try:
            code = json.loads(response.content)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        if code in SEMANTIC_422:
            return None
    raise AssertionError(f"Schema-valid request refused with {status}: {response.content[:300]!r}")
