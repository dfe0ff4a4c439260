"""Index back-ends behind one protocol (``base.VectorStore``); ``open_store(settings)`` picks one.

Back-end modules are imported lazily by the factory so that importing the protocol does not
load qdrant-client or the edge engine.
"""

from __future__ import annotations

from retrieval.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    CollectionNotFoundError,
    CollectionStats,
    Filter,
    HybridWeights,
    IndexBusyError,
    Match,
    QueryMode,
    ScoredChunk,
    SparseVec,
    VectorStore,
)
from retrieval.store.factory import index_lock, open_store
from retrieval.store.lock import FileLock, LockBusyError, LockHolder

__all__ = [
    "DENSE",
    "INDEXED_FIELDS",
    "SPARSE",
    "CollectionNotFoundError",
    "CollectionStats",
    "FileLock",
    "Filter",
    "HybridWeights",
    "IndexBusyError",
    "LockBusyError",
    "LockHolder",
    "Match",
    "QueryMode",
    "ScoredChunk",
    "SparseVec",
    "VectorStore",
    "index_lock",
    "open_store",
]
