"""The contract every index back-end fulfils: the embedded engine and qdrant-client (server or local mode).

Filters are a small neutral expression tree so that the access rules are written once (in
``retrieval/access.py``) and each back-end only translates them into its own Qdrant types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Protocol, Sequence, Union

from retrieval.models import Chunk

DENSE = "dense"
SPARSE = "sparse"

QueryMode = Literal["dense", "sparse", "hybrid"]


class IndexBusyError(RuntimeError):
    """The embedded index is held by another process (UI, another batch job)."""


class CollectionNotFoundError(KeyError):
    pass


@dataclass(frozen=True)
class SparseVec:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Match:
    """``key`` equals any of ``values`` (for list fields: any element does)."""

    key: str
    values: tuple[str | int | bool, ...]


@dataclass(frozen=True)
class Filter:
    must: tuple["Condition", ...] = ()
    should: tuple["Condition", ...] = ()
    must_not: tuple["Condition", ...] = ()

    def and_(self, other: "Filter | None") -> "Filter":
        if other is None:
            return self
        return Filter(must=(self, other))


Condition = Union[Match, Filter]


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float


@dataclass(frozen=True)
class CollectionStats:
    name: str
    points: int
    dim: int


@dataclass(frozen=True)
class HybridWeights:
    dense: float = 1.0
    sparse: float = 1.0
    prefetch: int = 100


# Payload fields that filters use; back-ends create keyword/bool indexes for them.
INDEXED_FIELDS: dict[str, Literal["keyword", "integer", "bool"]] = {
    "document_id": "keyword",
    "collection": "keyword",
    "path": "keyword",
    "file_hash": "keyword",
    "access_groups": "keyword",
    "has_override": "bool",
    "disabled": "bool",
    "chunk_index": "integer",
}


class VectorStore(Protocol):
    """One Qdrant collection per physical index; names here are physical names."""

    def list_collections(self) -> list[str]: ...

    def ensure_collection(self, name: str, dim: int) -> None:
        """Create with a dense cosine vector ``dense`` of ``dim`` and a sparse IDF vector ``sparse``."""

    def drop_collection(self, name: str) -> None: ...

    def stats(self, name: str) -> CollectionStats: ...

    def upsert(
        self, name: str, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVec]
    ) -> None: ...

    def delete(self, name: str, flt: Filter) -> None: ...

    def set_payload(self, name: str, flt: Filter, payload: dict) -> None: ...

    def scroll(self, name: str, flt: Filter | None = None, batch: int = 256) -> Iterator[Chunk]: ...

    def count(self, name: str, flt: Filter | None = None) -> int: ...

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Chunk]: ...

    def query(
        self,
        name: str,
        *,
        mode: QueryMode,
        dense: Sequence[float] | None,
        sparse: SparseVec | None,
        flt: Filter | None,
        limit: int,
        weights: HybridWeights = HybridWeights(),
    ) -> list[ScoredChunk]:
        """Hybrid = dense and sparse prefetch fused by (weighted) RRF, in one Query API call."""

    # Aliases let re-indexing switch versions atomically (issue 6).
    def set_alias(self, alias: str, target: str) -> None: ...

    def resolve_alias(self, alias: str) -> str | None: ...

    def close(self) -> None: ...
