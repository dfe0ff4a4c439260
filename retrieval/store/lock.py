"""An exclusive inter-process lock on a file that says who holds it.

Both embedded Qdrant engines allow one process per storage folder, and a second opener does
harm before it fails (edge corrupted the holder's next flush in tests), so every opener takes
this lock first. The holder writes its pid, host, program and subcommand (never the rest of
its command line: that can be a question) and start time into the lock file (mode 0600) so
the loser can name it ("held by pid 1234 (docent ui, since …)") instead of failing with a
bare "WouldBlock".

``flock`` is released by the kernel when the holder dies, so a stale file never blocks
anyone: its text is only read when the lock is really held. The file is never deleted,
because deleting a lock file lets two processes lock two different inodes at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from retrieval.private_files import open_private


@dataclass(frozen=True)
class LockHolder:
    pid: int
    hostname: str
    command: str
    purpose: str
    since: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        host = "" if self.hostname == socket.gethostname() else f" on {self.hostname}"
        return f"pid {self.pid}{host} ({self.command}, since {started})"


class LockBusyError(RuntimeError):
    """The lock is held by another process (or another open of it in this one)."""

    def __init__(self, path: Path, purpose: str, holder: LockHolder | None):
        self.path = path
        self.purpose = purpose
        self.holder = holder
        who = holder.describe() if holder else "another process (it has not recorded itself yet)"
        super().__init__(f"{purpose} busy: {path} is held by {who}")


_WORD = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def program_and_subcommand(parts: list[str]) -> str:
    """``docent ask`` out of ``docent -v ask "What is Alice's salary?"``: the program and its
    first bare-word argument, nothing else. The rest of a command line can be a user's question
    (or a path, a collection name), and the lock file is readable on disk and quoted in every
    "busy" message, so it keeps only what names the kind of process."""
    if parts and Path(parts[0]).name.startswith("python"):
        parts = parts[1:]
        if parts[:1] == ["-m"]:
            parts = parts[1:]
    if not parts:
        return "?"
    program = Path(parts[0]).name[:64]
    sub = next((p for p in parts[1:] if not p.startswith("-")), None)
    return f"{program} {sub}" if sub is not None and _WORD.match(sub) else program


def _command_line() -> str:
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
        parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    except OSError:
        parts = [sys.executable, *sys.argv]
    return program_and_subcommand(parts)


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in ``path``; ``None`` if it is empty or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        # A file written by an older version holds the whole command line: cut it here too.
        data["command"] = program_and_subcommand(str(data.get("command", "")).split())
        return LockHolder(**data)
    except (OSError, ValueError, TypeError):
        return None


class FileLock:
    """``with FileLock(path, "index"):`` — non-blocking; raises :class:`LockBusyError` at once."""

    def __init__(self, path: Path | str, purpose: str):
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusyError(self.path, self.purpose, read_holder(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        holder = LockHolder(os.getpid(), socket.gethostname(), _command_line(), self.purpose, time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # the next reader must not name a process that has let go
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            try:
                self.release()
            except OSError:
                pass
