"""Scopes: the partition every read and write goes through, defined once.

An item lives in exactly one scope: its user, agent and session, each of which may be absent. Its
*key* is that scope as a tuple over :data:`KEYS` (None where absent); two items share a scope when
their keys are equal (consolidation merges only within one key, context windows never cross one).

A query names a scope as a *filter*: ``{"user": "u1"}`` reaches every item whose user is ``u1``,
whatever its agent or session; ``{}`` reaches every item. The paths ask the same question in their
own forms: SQL terms (:func:`clause`), a Python predicate on an item's scope (:func:`contains`) or on
a key (:func:`contains_key`), and the vector cache's interned codes per key column
(:mod:`agentmem.ltm.vector`). Scopes are validated once at the public API (:func:`agentmem.validate.scope`);
nothing here re-checks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KEYS: tuple[str, ...] = ("user", "agent", "session")  # the journal's item and fact columns, in order
Key = tuple[str | None, ...]


def key(scope: Mapping[str, str]) -> Key:
    """An item's scope as a tuple over :data:`KEYS` (None where absent): equal tuples, same scope."""
    return tuple(map(scope.get, KEYS))


def from_columns(values: Sequence[str | None]) -> dict[str, str]:
    """The scope of a row's ``user, agent, session`` columns (absent keys dropped)."""
    return {k: v for k, v in zip(KEYS, values, strict=True) if v is not None}


def clause(scope: Mapping[str, str], prefix: str = "") -> tuple[str, list[Any]]:
    """SQL ``AND`` terms restricting rows (``prefix``: a table alias and dot) to the query ``scope``,
    and their parameters; ``("", [])`` for the whole memory."""
    names = [k for k in KEYS if k in scope]
    return "".join(f" AND {prefix}{k} = ?" for k in names), [scope[k] for k in names]


# SQL terms selecting the rows of one item key exactly (parameters: the key's values); ``IS``, since
# an absent key is NULL and must match only NULL
KEY_SQL = " AND ".join(f"{k} IS ?" for k in KEYS)


def contains(query: Mapping[str, str], item_scope: Mapping[str, str]) -> bool:
    """Whether an item of ``item_scope`` is inside the query scope ``query`` (the same meaning as
    :func:`clause`)."""
    return all(item_scope.get(k) == v for k, v in query.items())


def contains_key(query: Mapping[str, str], item_key: Key) -> bool:
    """:func:`contains` for an item's :func:`key`."""
    return all(item_key[j] == query[k] for j, k in enumerate(KEYS) if k in query)


def name(query: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable name of a query scope (equal for equal scopes, whatever the dict's order)."""
    return tuple(sorted(query.items()))
