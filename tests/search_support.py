"""Helpers for the search and access-control tests: documents indexed through the real
DocumentIndexer into real embedded stores (the embedder is conftest's session fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ingest.beir import corpus_items, doc_id_from_path
from ingest.indexer import DocumentIndexer, SourceFile
from ingest.parsed import ParsedDocument
from retrieval.catalog import CollectionRecord
from retrieval.evaluation import CorpusRecord, load_corpus
from retrieval.workspace import Workspace
from tests.conftest import FIXTURES, make_settings

RETRIEVAL_FIXTURES = FIXTURES / "retrieval"


def open_workspace(data_dir: Path, embedder, **overrides) -> Workspace:
    """The embedded engine in ``data_dir``, whatever DOCENT_* says."""
    settings = make_settings(data_dir, qdrant_url=None, qdrant_embedded_engine="edge", **overrides)
    return Workspace(settings, embedder=embedder)


def index_items(ws: Workspace, collection: str, items: Iterable[tuple[SourceFile, ParsedDocument]],
                read_groups: list[str] | None = None) -> CollectionRecord:
    rec = ws.catalog.find(collection) or ws.catalog.create_collection(collection, read_groups=read_groups)
    rec = ws.index.ensure(rec, ws.embedder.model_id, ws.embedder.dim)
    list(DocumentIndexer(ws.settings, ws.index, ws.embedder).index_all(rec, items))
    return rec


def fixture_records(name: str) -> list[CorpusRecord]:
    return list(load_corpus(RETRIEVAL_FIXTURES / name))


def index_records(ws: Workspace, collection: str, records: Iterable[CorpusRecord],
                  read_groups: list[str] | None = None) -> CollectionRecord:
    return index_items(ws, collection, corpus_items(records), read_groups)


def doc_ids(report) -> list[str]:
    return [doc_id_from_path(p.path) for p in report.passages]


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
