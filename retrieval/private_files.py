"""Docent's data files are its owner's alone: every file under the data folder that can hold
users' questions, answers, names or secrets (SQLite databases, the audit log, lock files) is
created mode 0600, whatever the process umask says, through the two helpers here.

A database made by an older version (0644 under the usual umask) is tightened when it is
next opened, with its WAL and shared-memory files: SQLite gives those the database's mode.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PRIVATE_MODE = 0o600


def _tighten(path: Path) -> None:
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, PRIVATE_MODE)
    except FileNotFoundError:
        pass
    except PermissionError:  # not ours (a shared volume): nothing we may change
        pass


def open_private(path: Path | str, flags: int) -> int:
    """``os.open(path, flags | O_CREAT, 0o600)``, its folder made first (0700 when new); an
    existing file that others may read is made private too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_MODE)
    if os.fstat(fd).st_mode & 0o077:
        try:
            os.fchmod(fd, PRIVATE_MODE)
        except PermissionError:
            pass
    return fd


@contextmanager
def private_sqlite(path: Path | str, timeout: float = 30) -> Iterator[sqlite3.Connection]:
    """One transaction on the SQLite database at ``path`` (WAL, rows by name), created 0600.
    ``secure_delete`` zeroes deleted and overwritten rows, so text removed from a row
    does not linger in free pages of the file."""
    path = Path(path)
    os.close(open_private(path, os.O_RDWR))  # sqlite3 would create it with the umask's mode
    for side in ("-wal", "-shm"):
        _tighten(path.with_name(path.name + side))
    db = sqlite3.connect(path, timeout=timeout)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA secure_delete=ON")
        db.row_factory = sqlite3.Row
        with db:
            yield db
    finally:
        db.close()
