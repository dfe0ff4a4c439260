"""Search: a question, who asks, and the collections they picked -> the best passages with provenance.

Per collection, one Qdrant Query API call does the retrieval (dense, sparse, or both prefetched
and fused by weighted RRF) with the asking user's read filter inside the engine; with document
routing on, the same query again inside the documents the question names, fused by rank; an optional
cross-encoder then reorders the top candidates; adjacent chunks of one document are merged
into one passage; a window of neighbouring chunks can be fetched for context, under the same
read filter. The report lists every stage that ran, and says so when rerank did not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, get_args

import numpy as np

from retrieval import sparse
from retrieval.access import can_read_collection, document_filter, effective_groups, read_filter
from retrieval.catalog import CollectionRecord
from retrieval.index import Index, IndexModelMismatchError
from retrieval.models import Chunk, Passage, Principal, SearchReport
from retrieval.passages import Ranked, merge_ranked, to_passage, with_context
from retrieval.rerank import Reranker, RerankerUnavailableError
from retrieval.routing import CardCache, route
from retrieval.settings import Settings
from retrieval.store.base import CollectionNotFoundError, Filter, HybridWeights, Match, ScoredChunk

log = logging.getLogger(__name__)

SearchMode = Literal["dense", "sparse", "hybrid", "hybrid+rerank"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
MAX_K = 200
MAX_WINDOW = 5


class SearchError(ValueError):
    """A search request that cannot be run as asked (empty question, bad mode, k or window)."""


class QueryEmbedder(Protocol):
    model_id: str
    dim: int

    def embed_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class _Target:
    rec: CollectionRecord
    physical: str
    flt: Filter


def may_read(principal: Principal, rec: CollectionRecord, chunk: Chunk) -> bool:
    """The access rule of retrieval/access.py, checked again on every returned chunk: the engine
    filter does the work, this makes a back-end bug drop a result instead of leaking it."""
    if chunk.disabled or chunk.collection != rec.id:
        return False
    if principal.is_admin:
        return True
    if chunk.access_groups is not None:
        return bool(set(effective_groups(principal)) & set(chunk.access_groups))
    return can_read_collection(principal, rec)


def _rerank_text(c: Chunk) -> str:
    context = " > ".join([c.title, *c.heading_path]) if c.title or c.heading_path else ""
    return f"{context}\n{c.text}" if context else c.text


RRF_K = 60


def fuse_ranks(lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float]) -> list[ScoredChunk]:
    """Reciprocal-rank fusion: a chunk scores sum(weight / (RRF_K + rank)) over the lists it is in."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for hits, weight in zip(lists, weights):
        for rank, h in enumerate(hits):
            scores[h.chunk.id] = scores.get(h.chunk.id, 0.0) + weight / (RRF_K + rank)
            chunks.setdefault(h.chunk.id, h.chunk)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [ScoredChunk(chunks[cid], scores[cid]) for cid in order]


class Searcher:
    def __init__(self, settings: Settings, index: Index, embedder: QueryEmbedder,
                 reranker: Reranker | None = None):
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.cards = CardCache(index.store)

    @classmethod
    def from_workspace(cls, ws) -> "Searcher":
        """The searcher of an opened ``retrieval.workspace.Workspace`` (reranker from settings)."""
        return cls(ws.settings, ws.index, ws.embedder, Reranker.from_settings(ws.settings))

    @property
    def best_mode(self) -> SearchMode:
        return "hybrid+rerank" if self.reranker is not None else "hybrid"

    @property
    def weights(self) -> HybridWeights:
        s = self.settings
        return HybridWeights(dense=s.dense_weight, sparse=s.sparse_weight, prefetch=s.prefetch_limit)

    # --- the request ------------------------------------------------------------------
    def _check(self, question: str, mode: str, k: int, window: int, collections: Sequence[str]) -> str:
        question = (question or "").strip()
        if not question:
            raise SearchError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise SearchError(f"the question is {len(question)} characters long; the limit is "
                              f"{self.settings.max_question_chars}")
        if mode not in SEARCH_MODES:
            raise SearchError(f"unknown search mode {mode!r}: choose from {', '.join(SEARCH_MODES)}")
        if mode == "hybrid+rerank" and self.reranker is None:
            raise RerankerUnavailableError("mode hybrid+rerank needs a cross-encoder: set DOCENT_RERANKER_PATH "
                                           "to a local CrossEncoder folder (none ships with Docent)")
        if not 1 <= k <= MAX_K:
            raise SearchError(f"k must be between 1 and {MAX_K}, got {k}")
        if not 0 <= window <= MAX_WINDOW:
            raise SearchError(f"window must be between 0 and {MAX_WINDOW}, got {window}")
        if not collections:
            raise SearchError("pick at least one collection to search")
        return question

    def _targets(self, principal: Principal, names: Sequence[str], document_ids: list[str] | None,
                 needs_dense: bool) -> list[_Target]:
        targets: list[_Target] = []
        for name in dict.fromkeys(names):
            rec = self.index.catalog.get(name)  # raises, naming the known collections
            if needs_dense and rec.model_id and rec.model_id != self.embedder.model_id:
                raise IndexModelMismatchError(
                    f"collection {rec.name!r} was indexed with {rec.model_id}, but the configured embedding "
                    f"model is {self.embedder.model_id}; run `docent reindex --collection {rec.name}`"
                )
            physical = self.index.target(rec)
            if physical not in self.index.store.list_collections():
                continue  # created but never ingested: nothing to find
            targets.append(_Target(rec, physical, read_filter(principal, rec).and_(document_filter(document_ids))))
        return targets

    # --- search -------------------------------------------------------------------------
    def search(self, question: str, principal: Principal, collections: list[str], mode: SearchMode = "hybrid",
               k: int = 8, document_ids: list[str] | None = None, window: int = 0) -> SearchReport:
        started = time.perf_counter()
        question = self._check(question, mode, k, window, collections)
        engine_mode = "hybrid" if mode == "hybrid+rerank" else mode
        targets = self._targets(principal, collections, document_ids, engine_mode != "sparse")
        stages: list[str] = []

        dense_q = sparse_q = None
        if engine_mode in ("dense", "hybrid"):
            dense_q = np.asarray(self.embedder.embed_query(question), dtype=np.float32).tolist()
        if engine_mode in ("sparse", "hybrid"):
            sparse_q = sparse.encode_query(question)
        w = self.weights
        if engine_mode == "hybrid":
            stages.append(f"hybrid: dense+sparse prefetch {w.prefetch} each, RRF weights "
                          f"dense={w.dense:g} sparse={w.sparse:g}")
            if not sparse_q.indices:
                stages.append("sparse: the question has no keyword terms, dense results only")
        else:
            stages.append(engine_mode)

        # Enough candidates that merging neighbours still leaves k passages, and all of the
        # reranker's share.
        limit = max(3 * k, k + 10)
        if mode == "hybrid+rerank":
            limit = max(limit, self.settings.rerank_top)
        ranked: list[Ranked] = []
        routes: list[str] = []
        for t in targets:
            try:
                hits = self._query(t, question, engine_mode, dense_q, sparse_q, limit, routes)
            except CollectionNotFoundError:
                continue  # dropped between listing and querying
            for h in hits:
                if may_read(principal, t.rec, h.chunk):
                    ranked.append(Ranked(h.chunk, h.score))
                else:
                    log.error("access filter let through chunk %s of %s for %s; dropped",
                              h.chunk.id, t.rec.name, principal.user)
        if self.settings.route_documents:
            stages.append("route: " + ("; ".join(routes) if routes else "the question names no document"))
        # Scores of one mode are comparable across collections (cosine, BM25, or RRF by rank);
        # the sort is stable, so ties keep each collection's own order.
        ranked.sort(key=lambda r: -r.score)

        if mode == "hybrid+rerank":
            ranked = self._rerank(question, ranked, stages)
        else:
            stages.append("rerank: off (no cross-encoder configured)" if self.reranker is None
                          else "rerank: not requested")

        groups = merge_ranked(ranked, k)
        passages = [to_passage(chunks, score) for chunks, score in groups]
        if sum(len(c) for c, _ in groups) > len(groups):
            stages.append("merge: adjacent chunks joined")
        if window and passages:
            by_id = {t.rec.id: t for t in targets}
            passages = [self._with_window(p, chunks, by_id[p.collection], window, principal)
                        for p, (chunks, _) in zip(passages, groups)]
            stages.append(f"window: {window} neighbouring chunk(s) each side")
        return SearchReport(
            mode=mode,
            stages=stages,
            collections=[t.rec.name for t in targets],
            retrieval_ms=round((time.perf_counter() - started) * 1000, 2),
            passages=passages,
        )

    def _query(self, t: _Target, question: str, mode: str, dense_q, sparse_q, limit: int,
               routes: list[str]) -> list[ScoredChunk]:
        """One collection's candidates: the engine's ranking, fused with the same query inside the
        documents the question names when routing is on (``retrieval.routing``)."""
        w = self.weights
        hits = self.index.store.query(t.physical, mode=mode, dense=dense_q, sparse=sparse_q, flt=t.flt,
                                      limit=limit, weights=w)
        if not self.settings.route_documents:
            return hits
        s = self.settings
        chosen = route(question, self.cards.cards(t.physical, t.flt), s.route_top_documents, s.route_min_score)
        if chosen is None:
            return fuse_ranks([hits], [1.0])
        routes.append(f"{t.rec.name}: {len(chosen.document_ids)} document(s), scores "
                      + ", ".join(f"{x:g}" for x in chosen.scores))
        inside = self.index.store.query(t.physical, mode=mode, dense=dense_q, sparse=sparse_q,
                                        flt=t.flt.and_(document_filter(list(chosen.document_ids))),
                                        limit=limit, weights=w)
        return fuse_ranks([hits, inside], [1.0, s.route_weight])

    def _rerank(self, question: str, ranked: list[Ranked], stages: list[str]) -> list[Ranked]:
        assert self.reranker is not None
        top, rest = ranked[: self.settings.rerank_top], ranked[self.settings.rerank_top :]
        scores = self.reranker.score(question, [_rerank_text(r.chunk) for r in top])
        order = sorted(range(len(top)), key=lambda i: -scores[i])
        stages.append(f"rerank: cross-encoder {self.reranker.name} on top {len(top)}")
        # Candidates past the reranked share keep their fused order, below every reranked one.
        floor = min(scores) if scores else 0.0
        return [Ranked(top[i].chunk, scores[i]) for i in order] + [
            Ranked(r.chunk, floor - 1 - n) for n, r in enumerate(rest)
        ]

    def _with_window(self, p: Passage, chunks: list[Chunk], target: _Target, window: int,
                     principal: Principal) -> Passage:
        first, last = chunks[0].chunk_index, chunks[-1].chunk_index
        wanted = [i for i in range(first - window, last + window + 1) if i >= 0 and not first <= i <= last]
        flt = Filter(must=(
            Match("document_id", (p.document_id,)),
            Match("file_hash", (chunks[0].file_hash,)),
            Match("chunk_index", tuple(wanted)),
        )).and_(target.flt)
        neighbours = sorted(
            (c for c in self.index.store.scroll(target.physical, flt) if may_read(principal, target.rec, c)),
            key=lambda c: c.chunk_index,
        )
        return with_context(p, [c for c in neighbours if c.chunk_index < first],
                            [c for c in neighbours if c.chunk_index > last])
