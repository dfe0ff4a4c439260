"""The built-in user store: SQLite under the data directory, argon2id hashes, roles, groups.

Only the built-in login mode keeps passwords here; OIDC and proxy modes take identity and
groups from the identity provider, and `--as-user` on the CLI resolves names against this
store.

Each user has a ``session_epoch``, raised by every password change: session tokens carry the
epoch they were issued at (ui/auth/sessions.py), so a changed or reset password ends the
user's other sessions.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, Field

from retrieval.private_files import private_sqlite
from retrieval.settings import Settings
from ui.auth.passwords import check_strength, dummy_hash, hash_password, needs_rehash, verify_password

Role = Literal["admin", "employee"]
ROLES: tuple[Role, ...] = ("admin", "employee")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$")
_GROUP_RE = re.compile(r"^[\w][\w.\-@ ]{0,63}$", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    groups TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_login REAL,
    session_epoch INTEGER NOT NULL DEFAULT 0
);
"""


class UserStoreError(ValueError):
    """A user-facing problem with a user request (bad name, unknown user, last admin, …)."""


class UserRecord(BaseModel):
    username: str
    role: Role = "employee"
    groups: list[str] = Field(default_factory=list)
    created_at: float = 0.0
    last_login: float | None = None
    session_epoch: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def users_path(settings: Settings) -> Path:
    return settings.data_dir / "users.sqlite3"


def clean_groups(groups: list[str] | None) -> list[str]:
    out: list[str] = []
    for g in groups or []:
        g = g.strip()
        if not g:
            continue
        if not _GROUP_RE.match(g):
            raise UserStoreError(f"invalid group name {g!r}: use letters, digits, '.', '-', '_', '@' (max 64)")
        if g not in out:
            out.append(g)
    return out


class UserStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(users)")}
            if "session_epoch" not in columns:  # a store made before session epochs existed
                db.execute("ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> "UserStore":
        return cls(users_path(settings))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with private_sqlite(self.path) as db:  # password hashes and login addresses: 0600
            yield db

    @staticmethod
    def _record(row: sqlite3.Row) -> UserRecord:
        data = {k: row[k] for k in ("username", "role", "created_at", "last_login", "session_epoch")}
        return UserRecord(**data, groups=json.loads(row["groups"]))

    # --- reading --------------------------------------------------------------------
    def list(self) -> list[UserRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM users ORDER BY username").fetchall()
        return [self._record(r) for r in rows]

    def find(self, username: str) -> UserRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        return self._record(row) if row else None

    def get(self, username: str) -> UserRecord:
        user = self.find(username)
        if user is None:
            raise UserStoreError(f"no user named {username!r}")
        return user

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def authenticate(self, username: str, password: str) -> UserRecord | None:
        """The user when the password matches, else None (same answer for unknown names).

        One password check either way: an unknown name is checked against a dummy hash of the
        same cost, so response time does not reveal which names exist.
        """
        with self._connect() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        if not verify_password(password, row["password_hash"] if row else dummy_hash()) or row is None:
            return None
        with self._connect() as db:
            db.execute("UPDATE users SET last_login = ? WHERE username = ?", (time.time(), row["username"]))
            if needs_rehash(row["password_hash"]):  # legacy scrypt or weaker argon2: upgrade while we know it
                db.execute("UPDATE users SET password_hash = ? WHERE username = ? AND password_hash = ?",
                           (hash_password(password), row["username"], row["password_hash"]))
        return self._record(row)

    # --- writing --------------------------------------------------------------------
    def add(self, username: str, password: str, role: Role = "employee", groups: list[str] | None = None) -> UserRecord:
        username = username.strip()
        if not _NAME_RE.match(username):
            raise UserStoreError(f"invalid user name {username!r}: use letters, digits, '.', '-', '_', '@' (max 64)")
        if role not in ROLES:
            raise UserStoreError(f"unknown role {role!r}: use admin or employee")
        check_strength(password)
        groups = clean_groups(groups)
        if self.find(username):
            raise UserStoreError(f"user {username!r} already exists")
        with self._connect() as db:
            db.execute(
                "INSERT INTO users (username, password_hash, role, groups, created_at) VALUES (?, ?, ?, ?, ?)",
                (username, hash_password(password), role, json.dumps(groups), time.time()),
            )
        return self.get(username)

    def set_password(self, username: str, password: str) -> None:
        """A new password; the user's sessions issued before it end (their epoch is now old)."""
        self.get(username)
        check_strength(password)
        with self._connect() as db:
            db.execute("UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE username = ?",
                       (hash_password(password), username))

    def set_role(self, username: str, role: Role) -> UserRecord:
        user = self.get(username)
        if role not in ROLES:
            raise UserStoreError(f"unknown role {role!r}: use admin or employee")
        if user.is_admin and role != "admin":
            self._keep_one_admin(username)
        with self._connect() as db:
            db.execute("UPDATE users SET role = ? WHERE username = ?", (role, username))
        return self.get(username)

    def set_groups(self, username: str, groups: list[str]) -> UserRecord:
        self.get(username)
        with self._connect() as db:
            db.execute("UPDATE users SET groups = ? WHERE username = ?", (json.dumps(clean_groups(groups)), username))
        return self.get(username)

    def remove(self, username: str) -> UserRecord:
        user = self.get(username)
        if user.is_admin:
            self._keep_one_admin(username)
        with self._connect() as db:
            db.execute("DELETE FROM users WHERE username = ?", (username,))
        return user

    def _keep_one_admin(self, leaving: str) -> None:
        if not any(u.is_admin and u.username != leaving for u in self.list()):
            raise UserStoreError(f"{leaving!r} is the last admin; make another user admin first")

    def groups(self) -> dict[str, list[str]]:
        """Each group with its members (groups exist only through their members here)."""
        members: dict[str, list[str]] = {}
        for u in self.list():
            for g in u.groups:
                members.setdefault(g, []).append(u.username)
        return dict(sorted(members.items()))
