"""A folder of real documents indexed for page-level evaluation, through the batch job users run.

Ingesting a few thousand PDF pages costs many minutes of CPU, so the index is kept under
``<data_dir>/eval-pages/<folder>-<key>`` and reused while its key holds: the sha256 of every
file, the embedding model, the chunking and contextual-text settings and the code that decides
what is indexed. Passage vectors go through the evaluation embedding cache, so a rebuild
embeds only text it has not seen.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ingest.batch import BatchIngest, file_sha256
from ingest.beir import CachedEmbedder, EmbeddingCache, build_key
from ingest.discover import discover
from ingest.indexer import DocumentIndexer, PassageEmbedder
from ingest.sandbox import ParserPool
from retrieval.settings import Settings
from retrieval.workspace import Workspace

COLLECTION = "pages"
_COMPLETE = "complete.json"
_INDEX_CODE = ("ingest/chunker.py", "ingest/indexer.py", "ingest/pdf_parser.py", "ingest/docx_parser.py",
               "retrieval/sparse.py")


@dataclass(frozen=True)
class PageIndex:
    settings: Settings  # data_dir points at this index's own folder
    collection: str
    documents: int
    chunks: int
    pages: int
    failed: list[str]
    reused: bool
    build_seconds: float


def folder_key(settings: Settings, files: list[Path], model_id: str) -> str:
    return build_key(settings, sorted((p.name, file_sha256(p)) for p in files), model_id, _INDEX_CODE)


def ensure_folder_index(settings: Settings, folder: Path, embedder: PassageEmbedder, rebuild: bool = False,
                        progress: Callable[[str, int, int], None] | None = None) -> PageIndex:
    """The index of ``folder``'s documents for these settings: reused when complete, else built."""
    files = discover([folder]).supported
    if not files:
        raise FileNotFoundError(f"{folder}: no supported document (PDF, DOCX) found")
    key = folder_key(settings, files, embedder.model_id)
    es = settings.model_copy(update={"data_dir": settings.data_dir / "eval-pages" / f"{folder.name}-{key[:16]}",
                                     "collection_prefix": f"{settings.collection_prefix}evalpages_"})
    marker = es.data_dir / _COMPLETE
    if marker.is_file() and not rebuild:
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("key") == key:
            return PageIndex(es, COLLECTION, info["documents"], info["chunks"], info["pages"], info["failed"],
                             True, info["seconds"])
    if es.data_dir.exists():
        shutil.rmtree(es.data_dir)
    started = time.perf_counter()
    cache = EmbeddingCache(settings.data_dir / "eval" / "embeddings.sqlite3", embedder.model_id)
    try:
        cached = CachedEmbedder(embedder, cache)
        with Workspace(es) as ws, ParserPool.from_settings(es) as pool:
            rec = ws.index.ensure(ws.catalog.create_collection(COLLECTION), cached.model_id, cached.dim)
            indexer = DocumentIndexer(es, ws.index, cached, batch_chunks=256)
            report = BatchIngest(ws.index, indexer, pool.parse).run(rec, [folder], progress=progress)
    finally:
        cache.close()
    done = [f for f in report.files if f.status == "indexed"]
    failed = [f"{Path(f.path).name}: {f.reason}" for f in report.files if f.status == "failed"]
    info = {"key": key, "documents": len(done), "chunks": sum(f.chunks or 0 for f in done),
            "pages": sum(f.pages or 0 for f in done), "failed": failed,
            "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info), encoding="utf-8")
    return PageIndex(es, COLLECTION, info["documents"], info["chunks"], info["pages"], failed, False, info["seconds"])
