"""Failed-login limits per account and per client address, shared by every browser session and
every app process through a table in the users database; each login event is an audit line.

Defaults: 5 failures for one account or 20 from one address within 15 minutes lock that
account or address until the oldest of those failures leaves the window (the address is the
TCP peer Streamlit sees; behind a reverse proxy set the address limit to 0). The count is kept
for names that do not exist too, so a lockout says nothing about which names are real. While
locked, no password is checked at all: a right guess inside the lockout does not get in.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from assistant.audit import AuditLog
from retrieval.private_files import private_sqlite
from retrieval.settings import Settings
from ui.auth.users import UserRecord, UserStore, users_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_failures (
    account TEXT NOT NULL,
    address TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_account ON login_failures (account, ts);
CREATE INDEX IF NOT EXISTS login_failures_address ON login_failures (address, ts);
"""
log = logging.getLogger(__name__)
_NO_ADDRESS = ""  # Streamlit reports no address for localhost: those share one bucket
_MAX_NAME = 64  # what goes into the audit line of a failed login (a pasted password stays short)


@dataclass(frozen=True)
class LoginResult:
    user: UserRecord | None
    blocked: bool = False


class LoginLimiter:
    def __init__(self, path: Path, audit: AuditLog, per_account: int = 5, per_address: int = 20,
                 window_s: float = 900.0, clock: Callable[[], float] = time.time):
        self.path, self.audit, self.clock = path, audit, clock
        self.per_account, self.per_address, self.window_s = per_account, per_address, window_s
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings, audit: AuditLog | None = None,
                      clock: Callable[[], float] = time.time) -> "LoginLimiter":
        return cls(users_path(settings), audit or AuditLog.from_settings(settings), settings.login_failures_per_account,
                   settings.login_failures_per_address, settings.login_window_s, clock)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with private_sqlite(self.path) as db:  # password hashes and login addresses: 0600
            yield db

    def _counts(self, db: sqlite3.Connection, account: str, address: str) -> tuple[int, int]:
        since = self.clock() - self.window_s
        by_account = db.execute("SELECT COUNT(*) FROM login_failures WHERE account = ? AND ts > ?", (account, since))
        by_address = db.execute("SELECT COUNT(*) FROM login_failures WHERE address = ? AND ts > ?", (address, since))
        return int(by_account.fetchone()[0]), int(by_address.fetchone()[0])

    def locked(self, account: str, address: str | None) -> bool:
        with self._connect() as db:
            n_account, n_address = self._counts(db, account, address or _NO_ADDRESS)
        return 0 < self.per_account <= n_account or 0 < self.per_address <= n_address  # 0 = no limit

    def failed(self, account: str, address: str | None) -> None:
        """Count a failure; the one that reaches a limit also writes a ``login_locked`` line."""
        now, address_key = self.clock(), address or _NO_ADDRESS
        with self._connect() as db:
            db.execute("DELETE FROM login_failures WHERE ts <= ?", (now - self.window_s,))  # keeps the table small
            db.execute("INSERT INTO login_failures (account, address, ts) VALUES (?, ?, ?)", (account, address_key, now))
            n_account, n_address = self._counts(db, account, address_key)
        self.record("login_failed", account, address)
        if n_account == self.per_account:
            self.record("login_locked", account, address, scope="account", failures=n_account)
        if n_address == self.per_address:
            self.record("login_locked", account, address, scope="address", failures=n_address)

    def record(self, event: str, account: str, address: str | None, **detail: object) -> None:
        try:
            self.audit.record_login(event, account[:_MAX_NAME], address, **detail)
        except OSError as exc:  # as for questions: a full audit volume must not lock everyone out
            log.error("audit log not written: %s", exc)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's count (the address's stays: spraying goes on counting)."""
        with self._connect() as db:
            db.execute("DELETE FROM login_failures WHERE account = ?", (account,))


def attempt_login(users: UserStore, limiter: LoginLimiter, username: str, password: str,
                  ip: str | None) -> LoginResult:
    """The whole built-in login check: limits, password, counting, audit lines."""
    account = username.strip()
    if limiter.locked(account, ip):
        limiter.record("login_blocked", account, ip)
        return LoginResult(None, blocked=True)
    user = users.authenticate(account, password) if account and password else None
    if user is None:
        limiter.failed(account, ip)
        return LoginResult(None)
    limiter.succeeded(user.username)
    limiter.record("login", user.username, ip)
    return LoginResult(user)
