"""VectorStore over ``qdrant-client``: a Qdrant server by URL in production, local mode in tests.

Every call goes through the public client API, so the same code serves a server and the
pure-Python local mode. Local mode ignores payload indexes and scans in Python (docs/engine-facts.md),
and is not safe with concurrent writers, so calls are serialised by a lock when the client
is local.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, Sequence

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from retrieval.models import Chunk
from retrieval.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    CollectionNotFoundError,
    CollectionStats,
    Filter,
    HybridWeights,
    Match,
    QueryMode,
    ScoredChunk,
    SparseVec,
)
from retrieval.store.checks import RRF_K, as_floats, check_match, check_query, check_upsert, in_order, rrf_weights
from retrieval.store.lock import FileLock

_SCHEMA = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "bool": models.PayloadSchemaType.BOOL,
}


def to_qdrant_filter(flt: Filter) -> models.Filter:
    """Neutral tree -> qdrant-client models. Empty clauses become ``None`` (no constraint)."""
    return models.Filter(
        must=[_condition(c) for c in flt.must] or None,
        should=[_condition(c) for c in flt.should] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _condition(cond: Match | Filter) -> models.Condition:
    if isinstance(cond, Filter):
        return to_qdrant_filter(cond)
    if isinstance(cond, Match):
        return _match(cond)
    raise TypeError(f"filter condition must be Match or Filter, got {type(cond).__name__}")


def _match(m: Match) -> models.Condition:
    check_match(m)
    values = list(m.values)
    if len(values) == 1:
        return models.FieldCondition(key=m.key, match=models.MatchValue(value=values[0]))
    # "equals any of ()" is false; an empty MatchAny matches nothing in every engine.
    if all(isinstance(v, str) for v in values) or all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        return models.FieldCondition(key=m.key, match=models.MatchAny(any=values))
    # MatchAny takes only strings or only integers: booleans and mixed lists become an OR.
    return models.Filter(
        should=[models.FieldCondition(key=m.key, match=models.MatchValue(value=v)) for v in values]
    )


class QdrantClientStore:
    """``QdrantClientStore(QdrantClient(url=..., api_key=...), shard_number=2, replication_factor=2)``."""

    def __init__(
        self,
        client: QdrantClient,
        *,
        shard_number: int = 1,
        replication_factor: int = 1,
        batch_size: int = 256,
        lock: FileLock | None = None,
    ):
        if shard_number < 1 or replication_factor < 1 or batch_size < 1:
            raise ValueError("shard_number, replication_factor and batch_size must be >= 1")
        self.client = client
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.batch_size = batch_size
        self._lock = lock
        # Local mode corrupts itself under concurrent writers (qdrant-client #1193); a server doesn't need this.
        is_local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self._guard: ContextManager = threading.RLock() if is_local else nullcontext()

    # --- collections -------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        with self._guard:
            return sorted(c.name for c in self.client.get_collections().collections)

    def ensure_collection(self, name: str, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        with self._guard:
            if self.client.collection_exists(name):
                have = self._dim(name)
                if have != dim:
                    raise ValueError(f"collection {name!r} has dense dim {have}, asked for {dim}")
                return
            self.client.create_collection(
                collection_name=name,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                shard_number=self.shard_number,
                replication_factor=self.replication_factor,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # local mode warns that indexes have no effect there
                for field, kind in INDEXED_FIELDS.items():
                    self.client.create_payload_index(name, field_name=field, field_schema=_SCHEMA[kind], wait=True)

    def drop_collection(self, name: str) -> None:
        with self._guard:
            self.client.delete_collection(name)  # missing: no-op; its aliases go with it

    def stats(self, name: str) -> CollectionStats:
        with self._op(name):
            return CollectionStats(name=name, points=self.client.count(name, exact=True).count, dim=self._dim(name))

    def _dim(self, name: str) -> int:
        vectors = self.client.get_collection(name).config.params.vectors
        if not isinstance(vectors, dict) or DENSE not in vectors:
            raise ValueError(f"collection {name!r} has no named vector {DENSE!r}: not a Docent index")
        return vectors[DENSE].size

    @contextmanager
    def _op(self, name: str) -> Iterator[None]:
        """Serialise (local mode) and turn "no such collection" into CollectionNotFoundError
        without an extra round trip per call; names may be aliases, as on the server."""
        with self._guard:
            try:
                yield
            except UnexpectedResponse as exc:  # a server
                if exc.status_code == 404:
                    raise CollectionNotFoundError(name) from exc
                raise
            except ValueError as exc:  # local mode: "Collection X not found"
                if str(exc).endswith("not found"):
                    raise CollectionNotFoundError(name) from exc
                raise

    # --- points --------------------------------------------------------------------------
    def upsert(
        self, name: str, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVec]
    ) -> None:
        check_upsert(chunks, dense, sparse)
        with self._op(name):
            for start in range(0, len(chunks), self.batch_size):
                end = start + self.batch_size
                points = [
                    models.PointStruct(
                        id=c.id,
                        vector={
                            DENSE: as_floats(d),
                            SPARSE: models.SparseVector(indices=list(s.indices), values=list(s.values)),
                        },
                        payload=c.payload(),
                    )
                    for c, d, s in zip(chunks[start:end], dense[start:end], sparse[start:end])
                ]
                self.client.upsert(name, points=points, wait=True)

    def delete(self, name: str, flt: Filter) -> None:
        with self._op(name):
            self.client.delete(name, points_selector=models.FilterSelector(filter=to_qdrant_filter(flt)), wait=True)

    def set_payload(self, name: str, flt: Filter, payload: dict) -> None:
        with self._op(name):
            self.client.set_payload(name, payload=payload, points=models.FilterSelector(filter=to_qdrant_filter(flt)), wait=True)

    def scroll(self, name: str, flt: Filter | None = None, batch: int = 256) -> Iterator[Chunk]:
        qf = to_qdrant_filter(flt) if flt is not None else None
        offset = None
        while True:
            with self._op(name):
                records, offset = self.client.scroll(
                    name, scroll_filter=qf, limit=batch, offset=offset, with_payload=True, with_vectors=False
                )
            for r in records:
                yield Chunk.from_payload(str(r.id), r.payload or {})
            if offset is None:
                return

    def count(self, name: str, flt: Filter | None = None) -> int:
        with self._op(name):
            qf = to_qdrant_filter(flt) if flt is not None else None
            return self.client.count(name, count_filter=qf, exact=True).count

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        with self._op(name):
            records = self.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=False)
        return in_order(ids, [Chunk.from_payload(str(r.id), r.payload or {}) for r in records])

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
        check_query(mode, dense, sparse, limit, weights)
        qf = to_qdrant_filter(flt) if flt is not None else None
        dense_q = as_floats(dense) if dense is not None else None
        sparse_q = (
            models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
            if sparse is not None and sparse.indices
            else None
        )
        kwargs: dict
        if mode == "dense":
            kwargs = {"query": dense_q, "using": DENSE}
        elif mode == "sparse":
            if sparse_q is None:
                return []  # no query term is in the vocabulary: nothing can match
            kwargs = {"query": sparse_q, "using": SPARSE}
        else:
            # The top-level filter is propagated into every prefetch (server, local mode and edge
            # alike, verified), so each side is filtered before it is cut to `prefetch`. Repeating
            # it on the prefetches would make local mode evaluate it twice per point.
            # A query with no known term has no sparse side: RRF over dense alone keeps dense order.
            prefetch = [models.Prefetch(query=dense_q, using=DENSE, limit=weights.prefetch)]
            if sparse_q is not None:
                prefetch.append(models.Prefetch(query=sparse_q, using=SPARSE, limit=weights.prefetch))
            rrf = models.Rrf(k=RRF_K, weights=rrf_weights(weights, sparse_q is not None))
            kwargs = {"prefetch": prefetch, "query": models.RrfQuery(rrf=rrf)}
        with self._op(name):
            points = self.client.query_points(
                name, query_filter=qf, limit=limit, with_payload=True, with_vectors=False, **kwargs
            ).points
        return [ScoredChunk(Chunk.from_payload(str(p.id), p.payload or {}), float(p.score)) for p in points]

    # --- aliases --------------------------------------------------------------------------
    def set_alias(self, alias: str, target: str) -> None:
        """Point ``alias`` at ``target`` in ONE alias request, so readers never see it missing."""
        with self._guard:
            if not self.client.collection_exists(target):
                raise CollectionNotFoundError(target)
            if alias in self.list_collections():
                raise ValueError(f"alias {alias!r} would shadow a collection of that name")
            ops: list = []
            if self.resolve_alias(alias) is not None:  # a server refuses to delete a missing alias
                ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
            ops.append(
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=alias))
            )
            self.client.update_collection_aliases(change_aliases_operations=ops)

    def resolve_alias(self, alias: str) -> str | None:
        with self._guard:
            for a in self.client.get_aliases().aliases:
                if a.alias_name == alias:
                    return a.collection_name
        return None

    def close(self) -> None:
        try:
            with self._guard:
                self.client.close()
        finally:
            if self._lock is not None:
                self._lock.release()
