"""Checks on user input at the public API; each failure is a typed error that names the fix."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from agentmem.errors import DimensionError, InvalidInputError, ScopeError
from agentmem.ltm.filters import filter_clause
from agentmem.scope import KEYS as SCOPE_KEYS

MAX_TEXT = 1_000_000  # characters
MAX_SCOPE_VALUE = 256
MAX_K = 10_000


def text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"text must be a str, got {type(value).__name__}; convert it with str() first")
    if not value.strip():
        raise InvalidInputError("text is empty; pass a non-blank string")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"text has {len(value)} characters (max {MAX_TEXT}); split it into chunks")
    if "\x00" in value:
        raise InvalidInputError("text contains a NUL character; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"text is not valid unicode (lone surrogate?): {exc}") from exc
    return value


def metadata(value: object) -> tuple[dict[str, Any], str]:
    """Return the metadata dict and its JSON form."""
    if value is None:
        return {}, "{}"
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(value).__name__}")
    if not all(isinstance(k, str) for k in value):
        raise InvalidInputError("metadata keys must be strings")
    try:
        encoded = json.dumps(dict(value), allow_nan=False, ensure_ascii=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise InvalidInputError(
            f"metadata must be JSON-serialisable (str, number, bool, None, list, dict; no NaN): {exc}") from exc
    return json.loads(encoded), encoded


def filters(value: object) -> dict[str, Any] | None:
    """Metadata equality filters: a dict of key (letters, digits, '_') -> string, number, bool or None.
    Checked before a query runs, so that no path (the STM scan included) sees a malformed filter."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"filters must be a dict of metadata key -> value, got {type(value).__name__}")
    filter_clause(dict(value), None, None)  # raises on a bad key or value: one definition of both
    return dict(value) or None


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: SQLite cannot store it
        return False
    return True


def scope(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ScopeError(f"scope must be a dict with keys from {SCOPE_KEYS}, got {type(value).__name__}")
    unknown = [k for k in value if k not in SCOPE_KEYS]
    if unknown:
        raise ScopeError(f"unknown scope key(s) {unknown!r}; use only {', '.join(SCOPE_KEYS)} "
                         "(put other attributes in metadata)")
    out = {}
    for key, v in value.items():
        if not isinstance(v, str) or not v or len(v) > MAX_SCOPE_VALUE or "\x00" in v or not _encodable(v):
            raise ScopeError(f"scope {key!r} must be a non-empty string of at most {MAX_SCOPE_VALUE} "
                             f"characters of valid unicode, got {v!r}")
        out[key] = v
    return out


def item_id(value: object) -> int:
    """An item id: an int (or numpy integer) that fits SQLite's 64-bit integers."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInputError(f"an item id must be an int, got {type(value).__name__}")
    if not -(1 << 63) <= int(value) < (1 << 63):
        raise InvalidInputError(f"item id {value} is out of range (ids are 64-bit integers)")
    return int(value)


def pairs(items: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """Command-line ``KEY=VALUE`` pairs as a dict; a value is JSON when it parses, else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{flag} {item!r} must look like KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def k(value: object, name: str = "k") -> int:
    """A count of results (``name`` says which argument, for the message): an int in [1, MAX_K]."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInputError(f"{name} must be an int, got {type(value).__name__}")
    if not 1 <= int(value) <= MAX_K:
        raise InvalidInputError(f"{name} must be between 1 and {MAX_K}, got {value}")
    return int(value)


_SECONDS = re.compile(r"^\d+(\.\d+)?$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def when(value: object, name: str = "time", *, upper: bool = False) -> float | None:
    """Unix seconds from a number, datetime, date or ISO-8601 string (naive times are UTC). A string
    of digits is unix seconds. ``upper=True`` (an upper bound, e.g. ``until``): a date without a
    time of day means the end of that day, so ``until="2023-12-31"`` includes the 31st."""
    if value is None:
        return None
    if isinstance(value, str) and _SECONDS.match(value.strip()):
        value = float(value)
    if upper and isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        value = date.fromisoformat(value.strip())
    if upper and isinstance(value, date) and not isinstance(value, datetime):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
        return math.nextafter(start + 86400.0, -math.inf)  # the day's last representable instant
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a number, datetime or ISO-8601 string")
    if isinstance(value, int | float | np.floating | np.integer):
        t = float(value)
    elif isinstance(value, datetime):
        t = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, date):
        t = datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidInputError(f"{name} {value!r} is not ISO-8601 (e.g. 2023-05-07T13:56)") from exc
        return when(parsed, name)
    else:
        raise InvalidInputError(f"{name} must be a number, datetime or ISO-8601 string, "
                                f"got {type(value).__name__}")
    if not math.isfinite(t):
        raise InvalidInputError(f"{name} must be finite")
    return t


def _float32(value: object) -> np.ndarray:
    """``value`` as a float32 array; one already float32 as is (a recall's query: no cast, no cost)."""
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        return value
    with np.errstate(over="ignore", invalid="ignore"):  # out of float32 range: inf, refused by the caller
        return np.asarray(value, dtype=np.float32)


def query_vectors(value: object, dim: int) -> np.ndarray:
    """One query vector (dim,) or many (n, dim) as float32 (n, dim), unit length (see :func:`vectors`);
    a ragged or non-numeric value is a DimensionError, not numpy's ValueError."""
    try:
        arr = _float32(value)
    except (TypeError, ValueError) as exc:
        raise DimensionError(f"query vectors must be a numeric (dim,) or (n, dim) array: {exc}") from exc
    return vectors(arr, 1 if arr.ndim == 1 else len(arr), dim)


def vectors(value: object, n: int, dim: int) -> np.ndarray:
    """Precomputed embeddings as float32 (n, dim), unit length; rejects NaN/inf and wrong shapes."""
    try:
        arr = _float32(value)
    except (TypeError, ValueError) as exc:
        raise DimensionError(f"embeddings must be numeric arrays: {exc}") from exc
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if n == 1 and arr.shape == (1, dim):  # one vector (a recall's query): the same checks, fewer calls
        row = arr[0]
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: the general path below
            sq = float(np.dot(row, row))  # NaN/inf anywhere shows up here
        if math.isfinite(sq) and 1e-30 < sq < 1e30:
            norm = math.sqrt(sq)
            if abs(norm - 1.0) < 1e-6:
                return np.array(arr, dtype=np.float32, order="C", copy=True)
            return np.ascontiguousarray(arr / np.float32(norm))
    if arr.shape != (n, dim):
        raise DimensionError(f"embeddings have shape {arr.shape}, expected ({n}, {dim}) for this memory's "
                             "embedder; embed with the same model or open a memory built for that dimension")
    norms32 = np.sqrt(np.einsum("ij,ij->i", arr, arr))  # NaN/inf anywhere in a row shows up here
    if np.isfinite(norms32).all() and len(norms32) and norms32.min() > 1e-15 and norms32.max() < 1e15:
        # the common case, in float32: no NaN/inf, norms far from overflow and underflow
        if np.abs(norms32 - 1.0).max() < 1e-6:  # already unit length: a private copy
            return np.array(arr, dtype=np.float32, order="C", copy=True)
        return np.ascontiguousarray(arr / norms32[:, None])
    if not np.isfinite(arr).all():
        raise DimensionError("embeddings contain NaN or infinity; clean them before storing")
    wide = arr.astype(np.float64)  # float32 norms overflow from ~1e19 and underflow below ~1e-23
    wide /= np.abs(wide).max(axis=1, keepdims=True).clip(min=np.finfo(np.float64).tiny)
    norms = np.linalg.norm(wide, axis=1, keepdims=True)
    if (norms == 0).any():
        raise DimensionError("an embedding is all zeros; it has no direction to search by")
    return np.ascontiguousarray(wide / norms, dtype=np.float32)
