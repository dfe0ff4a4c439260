"""Input checks and small helpers both back-ends share, so they reject bad input identically."""

from __future__ import annotations

from typing import Sequence

from retrieval.models import Chunk
from retrieval.store.base import HybridWeights, Match, QueryMode, SparseVec


def check_match(m: Match) -> None:
    if not m.key:
        raise ValueError("Match needs a payload key")
    for v in m.values:
        if not isinstance(v, (str, int, bool)):
            raise ValueError(f"Match on {m.key!r}: values must be str, int or bool, got {v!r}")


def check_query(
    mode: QueryMode, dense: Sequence[float] | None, sparse: SparseVec | None, limit: int, weights: HybridWeights
) -> None:
    if mode not in ("dense", "sparse", "hybrid"):
        raise ValueError(f"query mode must be dense, sparse or hybrid, got {mode!r}")
    if mode in ("dense", "hybrid") and dense is None:
        raise ValueError(f"{mode} query needs a dense vector")
    if mode in ("sparse", "hybrid") and sparse is None:
        raise ValueError(f"{mode} query needs a sparse vector")
    if sparse is not None and len(sparse.indices) != len(sparse.values):
        raise ValueError("sparse vector: indices and values differ in length")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if weights.dense < 0 or weights.sparse < 0 or weights.prefetch < 1:
        raise ValueError(f"bad hybrid weights {weights}: weights >= 0 and prefetch >= 1 required")


def check_upsert(chunks: Sequence[Chunk], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVec]) -> None:
    if not (len(chunks) == len(dense) == len(sparse)):
        raise ValueError(f"upsert: {len(chunks)} chunks, {len(dense)} dense and {len(sparse)} sparse vectors")
    for s in sparse:
        if len(s.indices) != len(s.values):
            raise ValueError("sparse vector: indices and values differ in length")


def as_floats(v: Sequence[float]) -> list[float]:
    """A plain list of floats; numpy rows (what an embedder returns) convert fastest via tolist()."""
    return v.tolist() if hasattr(v, "tolist") else list(map(float, v))


def in_order(ids: Sequence[str], chunks: list[Chunk]) -> list[Chunk]:
    """Engines return retrieved points in their own order; callers asked in theirs."""
    by_id = {c.id: c for c in chunks}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


# Qdrant's own default RRF constant; named here so edge and client fuse identically.
RRF_K = 2


def rrf_weights(weights: HybridWeights, with_sparse: bool) -> list[float] | None:
    """Per-prefetch RRF weights (dense first), or ``None`` for plain RRF when they are equal:
    plain RRF is the same ranking, and a server older than weighted RRF still accepts it."""
    ws = [weights.dense, weights.sparse] if with_sparse else [weights.dense]
    return None if len(set(ws)) == 1 and ws[0] > 0 else ws
