"""An inter-process lock on a file in the per-machine cache.

Two processes (a test run and the app, two pytest workers) may both find a model or the
llama-server binary missing; the lock makes the second one wait and then reuse the first
one's result instead of downloading or compiling the same thing twice.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def cache_lock(path: Path, log: Callable[[str], None] | None = None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"waiting for another process that holds {path} …")
            started = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if log:
                log(f"… got {path.name} after {time.monotonic() - started:.0f} s")
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
