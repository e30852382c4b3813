"""Metadata filters and time windows as SQL, the same everywhere a query reads items."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentmem.errors import InvalidInputError

FILTER_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def filter_clause(filters: dict[str, Any] | None, since: float | None, until: float | None,
                  prefix: str = "") -> tuple[str, list[Any]]:
    """SQL ``AND``-terms for metadata equality filters and an event-time window."""
    sql, params = "", []
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict of metadata key -> value, got {type(filters).__name__}")
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not FILTER_KEY.match(key):
            raise InvalidInputError(f"filter key {key!r} must be letters, digits or '_' (at most 64)")
        if value is None:
            sql += f" AND json_extract({prefix}metadata, '$.{key}') IS NULL"
            continue
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, str | int | float) or (isinstance(value, int) and not -(1 << 63) <= value < 1 << 63):
            raise InvalidInputError(f"filter value for {key!r} must be a string, number (64-bit for integers), "
                                    "bool or None")
        sql += f" AND json_extract({prefix}metadata, '$.{key}') = ?"
        params.append(value)
    if since is not None:
        sql += f" AND COALESCE({prefix}event_time, {prefix}created_at) >= ?"
        params.append(float(since))
    if until is not None:
        sql += f" AND COALESCE({prefix}event_time, {prefix}created_at) <= ?"
        params.append(float(until))
    return sql, params


def passing_sql(ids: Sequence[int], filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """The query of :meth:`Journal.passing`. NOT INDEXED keeps SQLite on the primary key: once the
    filter's value index exists it read that index instead, every row of a 99% filter's value (16 ms
    per recall under cProfile at 100k items in one scope, against 1 ms by primary key)."""
    f_sql, f_params = filter_clause(filters, None, None)
    return (f"SELECT id FROM items NOT INDEXED WHERE id IN ({','.join('?' * len(ids))}){f_sql}",
            [*ids, *f_params])
