"""Who may write a collection right now: ingestion runs (whole or partitioned) and re-indexing.

Two kinds of lock, both files under ``settings.lock_dir`` (flock, released by the kernel if the
holder dies, so a crash never leaves a stale lock):

* the **run lock**, exclusive, one per collection and partition: an overlapping cron run of
  the same worker exits at once naming the holder, while workers on disjoint partitions of
  one collection run side by side (each against a Qdrant server; the embedded engine admits
  one process anyway and says "index busy");
* the **writers gate**, one per collection: every ingestion run holds it *shared*, a re-index
  holds it *exclusive*. A re-index builds a new physical collection from the files and then
  switches the alias; a document written into the old one meanwhile would be lost with it,
  so the two never overlap.

The locks coordinate processes that share ``data_dir`` on one host (the same container
volume); they do not span machines. See deploy/README.md.
"""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ingest.partition import Partition
from retrieval.catalog import Catalog
from retrieval.private_files import open_private
from retrieval.settings import Settings
from retrieval.store.lock import FileLock, LockBusyError, LockHolder, read_holder


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def run_lock(settings: Settings, collection: str, partition: Partition | None = None) -> FileLock:
    """``ingest-<collection>.lock``, or ``ingest-<collection>.part-K-of-N.lock`` for a partition."""
    suffix = f".{partition.label}" if partition is not None else ""
    who = f"ingest of {collection!r}" + (f" partition {partition}" if partition is not None else "")
    return FileLock(settings.lock_dir / f"ingest-{safe_name(collection)}{suffix}.lock", who)


def _collection_key(settings: Settings, collection: str) -> str:
    """The collection's stable id when it exists (a name and its id, or a renamed collection,
    must share one gate); the typed name for one not created yet."""
    if settings.catalog_path.exists():
        rec = Catalog(settings.catalog_path).find(collection.strip())
        if rec is not None:
            return rec.id
    return collection.strip()


class GateBusyError(LockBusyError):
    """The writers gate is held the other way (a re-index, or ingestion runs)."""

    def __init__(self, path: Path, purpose: str, message: str, holder: LockHolder | None = None):
        RuntimeError.__init__(self, message)
        self.path, self.purpose, self.holder = path, purpose, holder


class SharedGate:
    """The shared side of the writers gate (a plain ``FileLock`` on the same file is the
    exclusive side: flock locks taken through different descriptors exclude each other).
    Shared holders write nothing into the file; the exclusive holder records itself there."""

    def __init__(self, path: Path, collection: str):
        self.path = Path(path)
        self.collection = collection
        self._fd: int | None = None

    def acquire(self) -> "SharedGate":
        fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(self.path)
            who = holder.describe() if holder else "another process"
            raise GateBusyError(self.path, f"ingest of {self.collection!r}",
                                f"index busy: collection {self.collection!r} is being re-indexed by {who}; "
                                "ingestion can run again when it finishes", holder) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def gate_path(settings: Settings, collection: str) -> Path:
    return settings.lock_dir / f"writers-{safe_name(_collection_key(settings, collection))}.lock"


def held_run_locks(settings: Settings) -> list[LockHolder]:
    """Holders of ingestion run locks that are held right now (a file whose lock we can take
    is free, whatever text it still holds)."""
    holders: list[LockHolder] = []
    for path in sorted(settings.lock_dir.glob("ingest-*.lock")):
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(path)
                if holder is not None:
                    holders.append(holder)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return holders


@contextmanager
def ingest_locks(settings: Settings, collection: str, partition: Partition | None = None) -> Iterator[None]:
    """What one ``docent ingest`` run holds: its run lock, then the writers gate (shared).
    Raises :class:`LockBusyError` (exit code 3) naming the holder."""
    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(settings, collection, partition):
        gate = SharedGate(gate_path(settings, collection), collection).acquire()
        try:
            yield
        finally:
            gate.release()


@contextmanager
def reindex_lock(settings: Settings, collection: str) -> Iterator[None]:
    """The writers gate, exclusive: no ingestion run of ``collection`` starts or runs meanwhile."""
    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(gate_path(settings, collection), f"re-index of {collection!r}")
    try:
        lock.acquire()
    except LockBusyError as exc:
        if exc.holder is not None:  # another re-index: FileLock's own message names it
            raise
        running = [h for h in held_run_locks(settings) if repr(collection) in h.purpose]
        who = "; ".join(f"{h.purpose} by {h.describe()}" for h in running) or "by another process"
        raise GateBusyError(exc.path, exc.purpose,
                            f"index busy: collection {collection!r} is being ingested ({who}); "
                            "re-index when ingestion has finished") from None
    try:
        yield
    finally:
        lock.release()
