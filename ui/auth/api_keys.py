"""API keys for the OpenAI-compatible API: issued per user by an admin, stored hashed, shown once.

A key is ``dk-`` + 32 random bytes (url-safe base64); the store keeps its SHA-256, never the
key. Why SHA-256 and not argon2 as for passwords: a password is guessable, so its hash must be
slow; a key has 256 bits of randomness, which no hash speed makes guessable, and it is checked
on every request, where an argon2 cost per call would be the API's own latency. The lookup is
by the digest (unique index), so no comparison of secrets happens in Python at all.

A key names a user, not a principal: the user's current groups and role are looked up on every
request (``ui.usecases.api_access``), so a group change or a removed user takes effect at once.
``groups`` is kept only for identities the built-in store does not hold (OIDC or proxy users),
which an admin states when issuing the key.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel

from retrieval.private_files import private_sqlite
from retrieval.settings import Settings

KEY_PREFIX = "dk-"
_KEY_RE = re.compile(r"^dk-[A-Za-z0-9_-]{43}$")
_NAME_RE = re.compile(r"^[\w.\- ]{0,64}$", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    groups TEXT,
    name TEXT NOT NULL,
    hint TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    last_used REAL,
    revoked_at REAL
);
"""


class ApiKeyError(ValueError):
    """A key request that cannot be done as asked (unknown id, bad name)."""


class ApiKeyRecord(BaseModel):
    id: str
    username: str
    groups: list[str] | None = None
    name: str
    hint: str  # the key's last four characters, to tell keys apart in a list
    created_at: float
    created_by: str
    last_used: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_keys_path(settings: Settings) -> Path:
    return settings.data_dir / "api_keys.sqlite3"


class ApiKeyStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ApiKeyStore":
        return cls(api_keys_path(settings))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with private_sqlite(self.path) as db:  # digests and user names: 0600
            yield db

    @staticmethod
    def _record(row: sqlite3.Row) -> ApiKeyRecord:
        data = {k: row[k] for k in ("id", "username", "name", "hint", "created_at", "created_by", "last_used",
                                    "revoked_at")}
        return ApiKeyRecord(**data, groups=json.loads(row["groups"]) if row["groups"] is not None else None)

    def create(self, username: str, *, name: str = "", groups: list[str] | None = None,
               created_by: str) -> tuple[ApiKeyRecord, str]:
        """A new key for ``username``: its record and the key itself, which is not kept."""
        if not _NAME_RE.match(name):
            raise ApiKeyError(f"invalid key name {name!r}: letters, digits, space, '.', '-', '_' (max 64)")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        with self._connect() as db:
            db.execute(
                "INSERT INTO api_keys (id, digest, username, groups, name, hint, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, key_digest(key), username, None if groups is None else json.dumps(groups), name,
                 key[-4:], time.time(), created_by),
            )
        return self.get(key_id), key

    def get(self, key_id: str) -> ApiKeyRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyError(f"no API key with id {key_id!r}")
        return self._record(row)

    def list(self, username: str | None = None) -> list[ApiKeyRecord]:
        query, args = "SELECT * FROM api_keys", ()
        if username is not None:
            query, args = query + " WHERE username = ?", (username,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at", args).fetchall()
        return [self._record(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKeyRecord:
        self.get(key_id)
        with self._connect() as db:
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id))
        return self.get(key_id)

    def revoke_all(self, username: str) -> int:
        """Every active key of ``username`` (the user was removed)."""
        with self._connect() as db:
            cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                             (time.time(), username))
            return cur.rowcount

    def verify(self, key: str) -> ApiKeyRecord | None:
        """The active key's record, or None for anything else (malformed, unknown, revoked)."""
        if not isinstance(key, str) or not _KEY_RE.match(key):
            return None
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE digest = ? AND revoked_at IS NULL",
                             (key_digest(key),)).fetchone()
            if row is None:
                return None
            # Minute resolution is enough to see which keys are in use, and spares a write per request.
            now = time.time()
            if row["last_used"] is None or now - row["last_used"] > 60:
                db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, row["id"]))
        return self._record(row)
