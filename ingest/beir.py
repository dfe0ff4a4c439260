"""BEIR corpora through the real ingestion path, so evaluation measures the code users run.

Each corpus record becomes a (SourceFile, ParsedDocument) pair — title as the document title,
text split into paragraph blocks — and goes through ``DocumentIndexer`` like any parsed file.
Its path is ``beir://<doc id>``, which maps passages back to the ids the qrels judge.

Indexing a corpus costs minutes of CPU (the embedder), so an index is kept per (corpus file,
model, chunking, index code) under ``<data_dir>/eval/`` and reused while that key holds;
passage embeddings are also cached by text, so a rebuild after a chunking or keyword change
embeds only passages it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ingest.batch import file_sha256
from ingest.indexer import DocumentIndexer, PassageEmbedder, SourceFile
from ingest.parsed import ParsedDocument, TextBuilder
from retrieval.evaluation import BeirSet, CorpusRecord
from retrieval.settings import Settings
from retrieval.workspace import Workspace

BEIR_SCHEME = "beir://"
EVAL_COLLECTION = "beir"
_COMPLETE = "complete.json"
_PARAGRAPHS = re.compile(r"\n\s*\n")
# Source files whose behaviour is baked into an index: a change to any of them means rebuild.
_INDEX_CODE = ("ingest/chunker.py", "ingest/indexer.py", "ingest/beir.py", "retrieval/sparse.py")


def beir_path(doc_id: str) -> str:
    return f"{BEIR_SCHEME}{doc_id}"


def doc_id_from_path(path: str) -> str | None:
    return path[len(BEIR_SCHEME):] if path.startswith(BEIR_SCHEME) else None


def to_parsed(record: CorpusRecord) -> tuple[SourceFile, ParsedDocument] | None:
    """The record as a parsed document (None when it has no text at all)."""
    body = record.text.strip() or record.title.strip()
    if not body:
        return None
    builder = TextBuilder()
    for para in _PARAGRAPHS.split(body):
        builder.add(para.strip())
    text = builder.text
    digest = hashlib.sha256(f"{record.title}\x00{text}".encode("utf-8")).hexdigest()
    path = beir_path(record.doc_id)
    parsed = ParsedDocument(path=path, format="text", title=record.title.strip(),  # type: ignore[arg-type]
                            text=text, blocks=builder.blocks, pages=None)
    return SourceFile(path=path, file_hash=digest, size=len(text.encode("utf-8"))), parsed


def corpus_items(records: Iterable[CorpusRecord]) -> Iterator[tuple[SourceFile, ParsedDocument]]:
    for record in records:
        item = to_parsed(record)
        if item is not None:
            yield item


class EmbeddingCache:
    """Passage vectors by (model, text) in SQLite: re-chunking a corpus re-embeds only new text."""

    def __init__(self, path: Path, model_id: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self._model = model_id

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self._model}\x00{text}".encode("utf-8")).digest()

    def get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for t in texts:
            row = self._db.execute("SELECT v FROM vec WHERE key = ?", (self._key(t),)).fetchone()
            out.append(np.frombuffer(row[0], dtype=np.float32) if row else None)
        return out

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vec (key, v) VALUES (?, ?)",
                [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)],
            )

    def close(self) -> None:
        self._db.close()


class CachedEmbedder:
    """A ``PassageEmbedder`` that asks the real model only for passages the cache lacks."""

    def __init__(self, embedder: PassageEmbedder, cache: EmbeddingCache):
        self._inner = embedder
        self._cache = cache
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.embedded = 0
        self.reused = 0

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        found = self._cache.get(texts)
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            fresh = self._inner.embed_passages([texts[i] for i in missing])
            self._cache.put([texts[i] for i in missing], fresh)
            for i, v in zip(missing, fresh):
                found[i] = v
        self.embedded += len(missing)
        self.reused += len(texts) - len(missing)
        return np.stack(found) if found else np.empty((0, self.dim), dtype=np.float32)


def build_key(settings: Settings, content: object, model_id: str, code: tuple[str, ...] = _INDEX_CODE) -> str:
    """Everything that decides what an evaluation index contains: its ``content`` (file hashes),
    the model, chunking, the contextual setting, the engine and the indexing code. One key for
    every evaluation index (``docent eval``, ``eval-pages``, ``eval-answers``)."""
    root = Path(__file__).resolve().parent.parent
    parts = {
        "content": content,
        "model": model_id,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "contextual_chunks": settings.contextual_chunks,
        "engine": settings.qdrant_url or settings.qdrant_embedded_engine,
        "code": {p: file_sha256(root / p) for p in code},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def index_key(settings: Settings, corpus_path: Path, model_id: str) -> str:
    return build_key(settings, file_sha256(corpus_path), model_id)


@dataclass(frozen=True)
class EvalIndex:
    settings: Settings  # data_dir points at this index's own folder
    collection: str
    key: str
    documents: int
    chunks: int
    reused: bool
    build_seconds: float


def eval_settings(settings: Settings, beir: BeirSet, key: str) -> Settings:
    folder = settings.data_dir / "eval" / f"{beir.root.name}-{key[:16]}"
    # A server is shared: a per-index prefix keeps evaluation collections apart from real ones.
    return settings.model_copy(update={"data_dir": folder, "collection_prefix": f"{settings.collection_prefix}eval_"})


def ensure_index(settings: Settings, beir: BeirSet, embedder: PassageEmbedder, rebuild: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> EvalIndex:
    """The index of ``beir``'s corpus for these settings: reused when complete, else built."""
    key = index_key(settings, beir.corpus_path, embedder.model_id)
    es = eval_settings(settings, beir, key)
    marker = es.data_dir / _COMPLETE
    if marker.is_file() and not rebuild:
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("key") == key:
            return EvalIndex(es, EVAL_COLLECTION, key, info["documents"], info["chunks"], True, info["seconds"])
    if es.data_dir.exists():
        shutil.rmtree(es.data_dir)
    started = time.perf_counter()
    cache = EmbeddingCache(settings.data_dir / "eval" / "embeddings.sqlite3", embedder.model_id)
    records = list(beir.corpus())
    documents = chunks = 0
    try:
        cached = CachedEmbedder(embedder, cache)
        with Workspace(es) as ws:
            existing = ws.catalog.find(EVAL_COLLECTION)
            if existing is not None:  # a server may hold a stale one under this prefix
                ws.index.drop(existing)
                ws.catalog.delete_collection(EVAL_COLLECTION)
            rec = ws.index.ensure(ws.catalog.create_collection(EVAL_COLLECTION), cached.model_id, cached.dim)
            indexer = DocumentIndexer(es, ws.index, cached, batch_chunks=256)
            for done in indexer.index_all(rec, corpus_items(records)):
                documents += 1
                chunks += done.chunks
                if progress:
                    progress(documents, len(records))
    finally:
        cache.close()
    seconds = round(time.perf_counter() - started, 1)
    marker.write_text(json.dumps({"key": key, "documents": documents, "chunks": chunks, "seconds": seconds,
                                  "embedded": cached.embedded, "reused_embeddings": cached.reused}),
                      encoding="utf-8")
    return EvalIndex(es, EVAL_COLLECTION, key, documents, chunks, False, seconds)
