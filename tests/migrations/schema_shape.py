"""The shape of a database schema as SQLAlchemy's inspector sees it, for comparison."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, types

#: Broad type families: the SQL a migration writes and the DDL SQLAlchemy emits may
#: spell one type differently (SERIAL and INTEGER, BOOL and TINYINT(1)).
FAMILIES: list[tuple[type[Any], str]] = [
    (types.Boolean, "boolean"),
    (types.Integer, "integer"),
    (types.Float, "float"),
    (types.Numeric, "float"),
    (types.DateTime, "datetime"),
    (types.LargeBinary, "binary"),
    (types._Binary, "binary"),
    (types.Text, "text"),
    (types.String, "string"),
]


def family(sqltype: Any) -> str:
    for cls, name in FAMILIES:
        if isinstance(sqltype, cls):
            if name == "string" and getattr(sqltype, "length", None):
                return f"string({sqltype.length})"
            return name
    return type(sqltype).__name__


def partial(index: Any) -> bool:
    """Whether the reflected index is partial (a WHERE: PostgreSQL and SQLite)."""
    options = index.get("dialect_options", {})
    return any(key.endswith("_where") and value is not None for key, value in options.items())


def shape(engine: Engine) -> dict[str, Any]:
    """Tables, columns (nullability, type family, length), primary keys, indexes and
    unique constraints (by name and columns)."""
    inspector = inspect(engine)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = {
            c["name"]: (c["nullable"], family(c["type"])) for c in inspector.get_columns(table)
        }
        indexes = {
            i["name"]: (tuple(i["column_names"]), bool(i["unique"]), partial(i))
            for i in inspector.get_indexes(table)
        }
        uniques = {
            u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
        }
        found[table] = {
            "columns": columns,
            "primary_key": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            "indexes": indexes,
            "unique_constraints": uniques,
        }
    return found
