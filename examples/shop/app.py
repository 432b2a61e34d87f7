"""The shop admin: a Flask app with tasktable bound, the dashboard mounted at /tasks."""

from __future__ import annotations

import os
import secrets

from flask import Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from tasktable import InlineResult, Task
from tasktable.contrib.flask import TaskTableExtension, flash_background_notice, get_table

from . import db
from .handlers import ExportOrdersCsv, SetMassDelivered

#: The seed's mass-action threshold: more selected orders than this run in the background.
DEFAULT_THRESHOLD = 5
LEVELS = {"success": "success", "error": "error", "warning": "warning"}


def create_app(database_url: str | None = None, *, threshold: int | None = None) -> Flask:
    url = database_url or db.database_url()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SHOP_SECRET_KEY") or secrets.token_hex(16),
        TASKTABLE_DATABASE_URL=url,
        TASKTABLE_URL_PREFIX="/tasks",  # the dashboard at /tasks/, the REST API at /tasks/api/v1
        SHOP_THRESHOLD=threshold or int(os.environ.get("SHOP_THRESHOLD") or DEFAULT_THRESHOLD),
    )
    TaskTableExtension(app)
    with db.engine(url).begin() as conn:
        db.setup(conn)

    @app.get("/")
    def orders() -> str:
        with db.engine(url).connect() as conn:
            rows = db.all_orders(conn)
        recent = get_table().list(limit=8).tasks
        return render_template(
            "orders.html", orders=rows, tasks=recent, threshold=app.config["SHOP_THRESHOLD"]
        )

    @app.post("/orders/set-delivered")
    def set_delivered() -> Response:
        ids = [int(i) for i in request.form.getlist("order_id")]
        if not ids:
            flash("Select at least one order.", "warning")
            return redirect(url_for("orders"))
        outcome = get_table().run_or_enqueue(
            SetMassDelivered,
            {"order_ids": ids},
            background=len(ids) > app.config["SHOP_THRESHOLD"],
        )
        if isinstance(outcome, Task):  # in the background: the seed's notice
            flash_background_notice(outcome)
        else:  # run within this request: its messages, as the seed shows them
            show_inline(outcome)
        return redirect(url_for("orders"))

    @app.post("/orders/export")
    def export() -> Response:
        flash_background_notice(get_table().enqueue(ExportOrdersCsv, {}))
        return redirect(url_for("orders"))

    return app


def show_inline(result: InlineResult) -> None:
    for message in result.messages:
        flash(message.text, LEVELS.get(message.level, "info"))
    if not result.ok and not result.messages:
        flash(f"{result.name} failed.", "error")
