"""Shared helpers for the search and access-control tests: one real embedder per test process,
real embedded stores in temporary folders, documents indexed through the real DocumentIndexer."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Iterable

from ingest.beir import corpus_items, doc_id_from_path
from ingest.indexer import DocumentIndexer, SourceFile
from ingest.parsed import ParsedDocument
from retrieval.catalog import CollectionRecord
from retrieval.evaluation import CorpusRecord, load_corpus
from retrieval.settings import Settings
from retrieval.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "retrieval"


@functools.cache
def shared_embedder():
    """Loading the model costs seconds: every test of the process shares this one."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from retrieval.embeddings import Embedder

    return Embedder.from_settings(Settings())


def open_workspace(data_dir: Path, **overrides) -> Workspace:
    """A workspace on the embedded engine in ``data_dir`` (the environment cannot redirect it)."""
    settings = Settings(data_dir=data_dir, qdrant_url=None, qdrant_embedded_engine="edge", **overrides)
    ws = Workspace(settings)
    ws.__dict__["embedder"] = shared_embedder()  # the cached_property, pre-filled
    return ws


def index_items(ws: Workspace, collection: str, items: Iterable[tuple[SourceFile, ParsedDocument]],
                read_groups: list[str] | None = None) -> CollectionRecord:
    rec = ws.catalog.find(collection) or ws.catalog.create_collection(collection, read_groups=read_groups)
    rec = ws.index.ensure(rec, ws.embedder.model_id, ws.embedder.dim)
    list(DocumentIndexer(ws.settings, ws.index, ws.embedder).index_all(rec, items))
    return rec


def fixture_records(name: str) -> list[CorpusRecord]:
    return list(load_corpus(FIXTURES / name))


def index_records(ws: Workspace, collection: str, records: Iterable[CorpusRecord],
                  read_groups: list[str] | None = None) -> CollectionRecord:
    return index_items(ws, collection, corpus_items(records), read_groups)


def doc_ids(report) -> list[str]:
    return [doc_id_from_path(p.path) for p in report.passages]


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
