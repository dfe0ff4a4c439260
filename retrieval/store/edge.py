"""VectorStore over qdrant-edge-py: Qdrant's Rust engine in-process, one EdgeShard folder per collection.

Layout under ``root``::

    <name>/            one EdgeShard (segments + WAL) per physical collection
    aliases.json       {"alias": "physical name"}, replaced atomically
    .creating-*/ .dropping-*/   transient; never listed

Two quirks of qdrant-edge-py 0.9.0 shape it:

* Booleans cannot be matched; edge_codec.py stores the bool fields as 0/1 (see there).
* One process per shard folder: a second opener fails with "Can't init WAL: WouldBlock" and
  may harm the holder (docs/engine-facts.md). ``factory.open_store`` takes a FileLock on the whole root first.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import qdrant_edge as qe

from retrieval.models import Chunk
from retrieval.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    CollectionNotFoundError,
    CollectionStats,
    Filter,
    HybridWeights,
    IndexBusyError,
    QueryMode,
    ScoredChunk,
    SparseVec,
)
from retrieval.store.checks import RRF_K, as_floats, check_query, check_upsert, in_order, rrf_weights
from retrieval.store.edge_codec import EDGE_SCHEMA, check_name, encode_payload, to_chunk, to_edge_filter, to_sparse
from retrieval.store.lock import FileLock

# HNSW would be built only when a segment passes the indexing threshold during optimize(). On
# 2 cores that build takes ~486 s per 100k vectors and blocks writes, while exact search over
# 100k vectors takes ~8 ms (docs/engine-facts.md). Docent's collections are far below the size where exact
# search becomes slow, so by default HNSW is never built and upserts stay at full speed;
# deployments with millions of chunks per collection belong on a Qdrant server.
NEVER_INDEX_KB = 2**31 - 1

_CONFIG_FILE = "edge_config.json"
_ALIASES_FILE = "aliases.json"


class EdgeStore:
    """``EdgeStore(root)``; shards open lazily and stay open until :meth:`close`."""

    def __init__(
        self,
        root: Path | str,
        *,
        indexing_threshold_kb: int = NEVER_INDEX_KB,
        batch_size: int = 1024,
        flush_interval_s: float = 5.0,
        lock: FileLock | None = None,
    ):
        if batch_size < 1 or flush_interval_s < 0:
            raise ValueError("batch_size must be >= 1 and flush_interval_s >= 0")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.indexing_threshold_kb = indexing_threshold_kb
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._lock = lock
        self._last_flush: dict[str, float] = {}
        self._shards: dict[str, qe.EdgeShard] = {}
        self._dims: dict[str, int] = {}
        # The shard is thread-safe; this serialises writes with open/close/drop so a Streamlit
        # thread never queries a shard that another thread is closing.
        self._guard = threading.RLock()
        self._closed = False

    # --- collections -------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / _CONFIG_FILE).is_file()
        )

    def _exists(self, name: str) -> bool:
        return (self.root / name / _CONFIG_FILE).is_file()

    def ensure_collection(self, name: str, dim: int) -> None:
        check_name(name)
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        with self._guard:
            if self._exists(name):
                have = self._dim(name)
                if have != dim:
                    raise ValueError(f"collection {name!r} has dense dim {have}, asked for {dim}")
                return
            # Built aside and renamed into place, so a crash never leaves a half-made collection listed.
            tmp = self.root / f".creating-{name}-{uuid.uuid4().hex[:8]}"
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb),
            )
            shard = qe.EdgeShard.create(str(tmp), config)
            try:
                for field, kind in INDEXED_FIELDS.items():
                    shard.update(qe.UpdateOperation.create_field_index(field, EDGE_SCHEMA[kind]))
                shard.flush()
            finally:
                shard.close()
            os.rename(tmp, self.root / name)
            _fsync_dir(self.root)

    def drop_collection(self, name: str) -> None:
        check_name(name)
        with self._guard:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            self._dims.pop(name, None)
            self._last_flush.pop(name, None)
            if not (self.root / name).exists():
                return
            # Its aliases go with it, as on a Qdrant server.
            aliases = self._read_aliases()
            kept = {a: t for a, t in aliases.items() if t != name}
            if kept != aliases:
                self._write_aliases(kept)
            trash = self.root / f".dropping-{name}-{uuid.uuid4().hex[:8]}"
            os.rename(self.root / name, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def stats(self, name: str) -> CollectionStats:
        shard = self._shard(name)
        physical = self._physical(name)
        return CollectionStats(name=name, points=shard.count(qe.CountRequest(exact=True)), dim=self._dim(physical))

    def optimize(self, name: str) -> bool:
        """Merge segments and vacuum deleted points (blocking). Not in the VectorStore protocol;
        the batch job may call it after large deletes. With the default threshold it builds no HNSW."""
        with self._guard:
            return self._shard(name).optimize()

    def _dim(self, physical: str) -> int:
        if physical not in self._dims:
            config = json.loads((self.root / physical / _CONFIG_FILE).read_text(encoding="utf-8"))
            self._dims[physical] = int(config["vectors"][DENSE]["size"])
        return self._dims[physical]

    def _physical(self, name: str) -> str:
        check_name(name)
        if self._exists(name):
            return name
        target = self._read_aliases().get(name)
        if target is None or not self._exists(target):
            raise CollectionNotFoundError(name)
        return target

    def _shard(self, name: str) -> qe.EdgeShard:
        with self._guard:
            if self._closed:
                raise RuntimeError("EdgeStore is closed")
            physical = self._physical(name)
            shard = self._shards.get(physical)
            if shard is None:
                try:
                    shard = qe.EdgeShard.load(str(self.root / physical))
                except Exception as exc:  # the binding raises plain Exception
                    if "WouldBlock" in str(exc):
                        raise IndexBusyError(f"index busy: {self.root / physical} is open in another process") from exc
                    raise
                self._shards[physical] = shard
            return shard

    # --- points --------------------------------------------------------------------------
    def upsert(
        self, name: str, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVec]
    ) -> None:
        check_upsert(chunks, dense, sparse)
        with self._guard:
            shard = self._shard(name)
            for start in range(0, len(chunks), self.batch_size):
                end = start + self.batch_size
                points = [
                    qe.Point(c.id, {DENSE: as_floats(d), SPARSE: to_sparse(s)}, encode_payload(c.payload()))
                    for c, d, s in zip(chunks[start:end], dense[start:end], sparse[start:end])
                ]
                shard.update(qe.UpdateOperation.upsert_points(points))
            self._written(name, shard)

    def delete(self, name: str, flt: Filter) -> None:
        with self._guard:
            shard = self._shard(name)
            shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(flt)))
            self._written(name, shard)

    def set_payload(self, name: str, flt: Filter, payload: dict) -> None:
        with self._guard:
            shard = self._shard(name)
            shard.update(qe.UpdateOperation.set_payload_by_filter(to_edge_filter(flt), encode_payload(payload)))
            self._written(name, shard)

    def _written(self, name: str, shard: qe.EdgeShard) -> None:
        # Every update is in the WAL before update() returns, and the WAL alone brings all of it
        # back after kill -9 (tested: tests/test_store_contract.py). flush() only writes the
        # segments so that a reopen replays a short WAL; it costs a fixed 0.2-0.5 s on these
        # machines whatever the batch size, which per document would dominate ingestion, so it
        # runs at most every `flush_interval_s` and on close().
        now = time.monotonic()
        physical = self._physical(name)
        if now - self._last_flush.get(physical, 0.0) >= self.flush_interval_s:
            shard.flush()
            self._last_flush[physical] = time.monotonic()

    def flush(self) -> None:
        """Write every open shard's segments now (close() does this too)."""
        with self._guard:
            for shard in self._shards.values():
                shard.flush()

    def scroll(self, name: str, flt: Filter | None = None, batch: int = 256) -> Iterator[Chunk]:
        ef = to_edge_filter(flt) if flt is not None else None
        offset = None
        while True:
            records, offset = self._shard(name).scroll(
                qe.ScrollRequest(offset=offset, limit=batch, filter=ef, with_payload=True, with_vector=False)
            )
            for r in records:
                yield to_chunk(r.id, r.payload)
            if offset is None:
                return

    def count(self, name: str, flt: Filter | None = None) -> int:
        ef = to_edge_filter(flt) if flt is not None else None
        return self._shard(name).count(qe.CountRequest(exact=True, filter=ef))

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        records = self._shard(name).retrieve(list(ids), True, False)
        return in_order(ids, [to_chunk(r.id, r.payload) for r in records])

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
        ef = to_edge_filter(flt) if flt is not None else None
        dense_q = as_floats(dense) if dense is not None else None
        sparse_q = to_sparse(sparse) if sparse is not None and sparse.indices else None
        if mode == "dense":
            request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(dense_q, using=DENSE), filter=ef, with_payload=True)
        elif mode == "sparse":
            if sparse_q is None:
                return []  # no query term is in the vocabulary: nothing can match
            request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(sparse_q, using=SPARSE), filter=ef, with_payload=True)
        else:
            # Same shape as client.py: the top-level filter propagates into the prefetches
            # (verified on edge); RRF over dense alone when the query has no known term.
            prefetches = [qe.Prefetch(limit=weights.prefetch, query=qe.Query.Nearest(dense_q, using=DENSE))]
            if sparse_q is not None:
                prefetches.append(qe.Prefetch(limit=weights.prefetch, query=qe.Query.Nearest(sparse_q, using=SPARSE)))
            fusion = qe.Fusion.Rrf(k=RRF_K, weights=rrf_weights(weights, sparse_q is not None))
            request = qe.QueryRequest(limit=limit, prefetches=prefetches, query=fusion, filter=ef, with_payload=True)
        points = self._shard(name).query(request)
        return [ScoredChunk(to_chunk(p.id, p.payload), float(p.score)) for p in points]

    # --- aliases --------------------------------------------------------------------------
    def set_alias(self, alias: str, target: str) -> None:
        """Atomic: the alias file is replaced whole, so readers see the old target or the new one."""
        check_name(alias)
        check_name(target)
        with self._guard:
            if not self._exists(target):
                raise CollectionNotFoundError(target)
            if self._exists(alias):
                raise ValueError(f"alias {alias!r} would shadow a collection of that name")
            aliases = self._read_aliases()
            aliases[alias] = target
            self._write_aliases(aliases)

    def resolve_alias(self, alias: str) -> str | None:
        return self._read_aliases().get(alias)

    def _read_aliases(self) -> dict[str, str]:
        path = self.root / _ALIASES_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise RuntimeError(f"{path} is not valid JSON; fix or delete it: {exc}") from exc
        if not isinstance(data, dict):
            raise RuntimeError(f"{path} must hold a JSON object of alias -> collection")
        return {str(k): str(v) for k, v in data.items()}

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        path = self.root / _ALIASES_FILE
        tmp = path.with_name(f".{_ALIASES_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(aliases, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.root)

    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            try:
                for shard in self._shards.values():
                    shard.flush()
                    shard.close()
                self._shards.clear()
            finally:
                if self._lock is not None:
                    self._lock.release()


def _fsync_dir(path: Path) -> None:
    """A rename is durable only once its directory is synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
