"""Choose and open the index back-end the settings name.

The embedded engines allow one process per folder, and a second opener can damage the first
(docs/engine-facts.md), so the lock is taken before the engine is touched and released by ``close()``.
"""

from __future__ import annotations

from retrieval.settings import Settings
from retrieval.store.base import IndexBusyError, VectorStore
from retrieval.store.lock import FileLock, LockBusyError


def index_lock(settings: Settings) -> FileLock:
    """The lock guarding the embedded index folder named by ``settings``."""
    engine = settings.qdrant_embedded_engine
    return FileLock(settings.index_dir / f"{engine}.lock", purpose="index")


def open_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from retrieval.store.client import QdrantClientStore

        return QdrantClientStore(
            QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key),
            shard_number=settings.qdrant_shards,
            replication_factor=settings.qdrant_replication_factor,
        )

    engine = settings.qdrant_embedded_engine
    folder = settings.index_dir / engine
    lock = index_lock(settings)
    try:
        lock.acquire()
    except LockBusyError as exc:
        who = exc.holder.describe() if exc.holder else "another process"
        raise IndexBusyError(f"index busy: {folder} is held by {who}") from exc
    try:
        if engine == "edge":
            from retrieval.store.edge import EdgeStore

            return EdgeStore(folder, lock=lock)
        if engine == "local":
            return _open_local(folder, lock)
        raise ValueError(f"unknown embedded engine {engine!r}: use 'edge' or 'local'")
    except BaseException:
        lock.release()
        raise


def _open_local(folder, lock: FileLock) -> VectorStore:
    from qdrant_client import QdrantClient

    from retrieval.store.client import QdrantClientStore

    try:
        client = QdrantClient(path=str(folder))
    except RuntimeError as exc:
        # Reached only when someone opened the folder without our lock (a notebook, a bench script).
        if "already accessed by another instance" in str(exc):
            raise IndexBusyError(f"index busy: {folder} is open in another process (without Docent's lock)") from exc
        raise
    return QdrantClientStore(client, lock=lock)
