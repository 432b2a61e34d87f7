"""The shop's own data: orders in a SQLite file (or any SQLAlchemy URL).

The shop and tasktable share one database (``SHOP_DATABASE_URL``, default
``sqlite:///var/shop/shop.sqlite3``); the web app and the worker both read it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    select,
    update,
)

from tasktable.storage.engine import parse_url

DEFAULT_URL = "sqlite:///var/shop/shop.sqlite3"

metadata = MetaData()
orders = Table(
    "shop_order",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer", String(100), nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("status", String(30), nullable=False),
)

CUSTOMERS = ("Ada", "Grace", "Linus", "Guido", "Barbara", "Ken", "Margaret", "Dennis")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url() -> str:
    return os.environ.get("SHOP_DATABASE_URL") or DEFAULT_URL


def engine(url: str | None = None) -> Engine:
    """One engine per URL and process (the worker's handlers share it)."""
    url = url or database_url()
    with _lock:
        if url not in _engines:
            options: dict[str, Any] = {}
            if url.startswith("sqlite"):
                options["connect_args"] = {"timeout": 30}  # wait for the worker's writes
            _engines[url] = create_engine(parse_url(url), **options)
        return _engines[url]


def setup(conn: Connection, count: int = 30) -> None:
    """Create the orders table, with ``count`` sample orders when it is empty."""
    metadata.create_all(conn)
    if conn.execute(select(func.count()).select_from(orders)).scalar_one():
        return
    conn.execute(
        orders.insert(),
        [
            {
                "id": n,
                "customer": CUSTOMERS[n % len(CUSTOMERS)],
                "total_cents": 1000 + (n * 1234) % 9000,
                "status": "processing" if n % 5 == 0 else "complete",
            }
            for n in range(1, count + 1)
        ],
    )


def all_orders(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(orders).order_by(orders.c.id)).mappings()
    return [dict(r) for r in rows]


def set_delivered(conn: Connection, order_ids: Sequence[int]) -> int:
    """The seed's updateCompleteOrderStatuses: complete orders become delivered."""
    done = conn.execute(
        update(orders)
        .where(orders.c.id.in_(list(order_ids)), orders.c.status == "complete")
        .values(status="delivered")
    )
    return int(done.rowcount)
