"""Scoped API keys, stored in the journal (table ``api_keys``) as their SHA-256 only.

A key is ``am_<id>_<secret>``: the id (8 hex characters) names the row, the secret (32 bytes,
URL-safe base64) is what proves it; the whole key is printed once, at creation. A key carries a scope
(user, agent, session; an unset field is unrestricted), a read-only flag, and an admin flag that
reaches every scope. A request's scope is checked against its key's by :func:`narrowed`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentmem import scope as scopes
from agentmem.errors import AuthError, InvalidInputError, NotFoundError, ScopeDeniedError

if TYPE_CHECKING:
    from agentmem.ltm.journal import Journal

KEY = re.compile(r"^am_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """One key as stored (never its secret)."""

    id: str
    scope: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    admin: bool = False
    note: str = ""
    created_at: float = 0.0
    revoked_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "scope": self.scope, "read_only": self.read_only, "admin": self.admin,
                "note": self.note, "created_at": self.created_at, "revoked_at": self.revoked_at}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys of one memory, read from and written to its journal (each call one statement or
    transaction, so a key created or revoked by another process takes effect on the next request)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._any = False  # once a key exists it stays (revoked keys are kept): no need to ask again

    def create(self, scope: dict[str, str] | None = None, *, read_only: bool = False, admin: bool = False,
               note: str = "") -> tuple[str, ApiKey]:
        """A new key: (the key itself, to hand to its holder once; what is stored). A non-admin key
        needs a scope: a key for every user is an admin key, and says so."""
        scope = dict(scope or {})
        if not admin and not scope:
            raise InvalidInputError("a key needs a scope (--user, --agent or --session), or --admin for a key "
                                    "that reaches every scope")
        if admin and scope:
            raise InvalidInputError("an admin key reaches every scope; give it no --user/--agent/--session")
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        key = f"am_{key_id}_{secret}"
        now = time.time()
        with self._journal.tx() as c:
            c.execute("INSERT INTO api_keys (id, hash, user, agent, session, read_only, admin, note, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (key_id, _digest(key), *scopes.key(scope), int(read_only), int(admin), note, now))
        return key, ApiKey(key_id, scope, read_only, admin, note, now)

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._journal.reading() as conn:
            rows = conn.execute(
                "SELECT id, user, agent, session, read_only, admin, note, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, id").fetchall()
        return [_key(r) for r in rows]

    def any(self) -> bool:
        """Whether a key was ever created (revoked ones count: once a memory has keys, every
        request to its server needs one)."""
        if not self._any:
            with self._journal.reading() as conn:
                self._any = conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None
        return self._any

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (the 8 hex characters after ``am_``); it stops working at once.
        Revoking a revoked key changes nothing (its first revocation time stays)."""
        with self._journal.tx() as c:
            c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id))
        found = [k for k in self.list() if k.id == key_id]
        if not found:
            raise NotFoundError(f"no key {key_id!r}; `agentmem keys list PATH` shows the ids")
        return found[0]

    def from_header(self, header: str) -> ApiKey | None:
        """The key an ``Authorization`` header proves; None when the memory has no key yet and the
        header is empty (a loopback-only server serves every scope); AuthError otherwise."""
        if not header and not self.any():
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("this server needs an API key: send 'Authorization: Bearer <key>' "
                            "(`agentmem keys create PATH --user U` makes one)")
        return self.verify(token.strip())

    def verify(self, key: str) -> ApiKey:
        """The stored key that ``key`` proves; AuthError if it is malformed, unknown or revoked."""
        m = KEY.match(key)
        if m is None:
            raise AuthError("malformed API key; send 'Authorization: Bearer am_<id>_<secret>' as printed by "
                            "`agentmem keys create`")
        with self._journal.reading() as conn:
            row = conn.execute(
                "SELECT id, user, agent, session, read_only, admin, note, created_at, revoked_at, hash "
                "FROM api_keys WHERE id = ?", (m.group(1),)).fetchone()
        if row is None or not hmac.compare_digest(row[9], _digest(key)):
            raise AuthError("unknown API key")
        found = _key(row[:9])
        if found.revoked_at is not None:
            raise AuthError(f"API key {found.id} was revoked")
        return found


def _key(row: tuple[object, ...]) -> ApiKey:
    scope = scopes.from_columns(row[1:4])  # type: ignore[arg-type]
    return ApiKey(str(row[0]), scope, bool(row[4]), bool(row[5]), str(row[6]), float(row[7]),  # type: ignore[arg-type]
                  None if row[8] is None else float(row[8]))  # type: ignore[arg-type]


def narrowed(key: ApiKey | None, requested: dict[str, str] | None, *, write: bool = False) -> dict[str, str]:
    """The scope a request acts in: the requested one, which may narrow the key's (add fields) but
    never widen it (drop or change a field): ScopeDeniedError. No scope asked: the key's own.
    ``key=None`` is a server without keys (loopback only): any scope."""
    if key is not None and write and key.read_only:
        raise ScopeDeniedError(f"API key {key.id} is read-only; create a key without --read-only to write")
    asked = dict(requested) if requested is not None else (dict(key.scope) if key is not None else {})
    if key is None or key.admin:
        return asked
    for field_, value in key.scope.items():
        if asked.get(field_) != value:
            raise ScopeDeniedError(f"API key {key.id} is limited to scope {key.scope}; the request asked for "
                                   f"{asked or 'every scope'}")
    return asked


def reachable(memory: Any, item_id: int, key: ApiKey | None) -> Any:
    """The item ``item_id`` of ``memory`` (a ``Memory``) when ``key`` may see it: NotFoundError if there is
    none, ScopeDeniedError if it lies outside the key's scope (the REST routes and the MCP tools alike)."""
    item = memory.get(item_id)
    if not reaches(key, item.scope):
        raise ScopeDeniedError(f"item {item_id} is outside the scope of API key {key.id if key else ''}")
    return item


def reaches(key: ApiKey | None, item_scope: dict[str, str]) -> bool:
    """Whether ``key`` may see an item of ``item_scope``."""
    return key is None or key.admin or scopes.contains(key.scope, item_scope)
