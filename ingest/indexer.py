"""Turn parsed documents into indexed chunks: chunk, embed in cross-document batches, write.

Shared by the batch job (files on disk) and evaluation (BEIR corpora), so both measure the
same code. Embedding dominates the cost, so chunks of several small documents are embedded
together; each document is still written (and made visible) on its own.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from ingest.chunker import ChunkDraft, chunk_document
from ingest.errors import ParseError
from ingest.parsed import ParsedDocument
from retrieval import sparse
from retrieval.catalog import CollectionRecord
from retrieval.index import Index
from retrieval.models import Chunk, chunk_id_for, document_id_for
from retrieval.settings import Settings


class PassageEmbedder(Protocol):
    dim: int
    model_id: str

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


@dataclass(frozen=True)
class SourceFile:
    """What the batch job knows about a file besides its content."""

    path: str
    file_hash: str
    size: int = 0
    mtime: float = 0.0
    access_groups: list[str] | None = None


@dataclass(frozen=True)
class IndexedDocument:
    source: SourceFile
    parsed: ParsedDocument
    chunks: int
    seconds: float


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What the models see: the passage with its title and section, which often carry the very
    words a question uses ("Refund policy" > "Exceptions") while the passage does not."""
    context = " > ".join([title, *heading_path]) if title or heading_path else ""
    return f"{context}\n{text}" if context else text


def chunk_embedding_text(chunk: Chunk) -> str:
    """What is embedded and keyword-indexed for a stored chunk: its contextual text when it was
    built with one (``contextual_chunks``), else title and section as always."""
    if chunk.context:
        return f"{chunk.context}\n{chunk.text}"
    return embedding_text(chunk.title, chunk.heading_path, chunk.text)


# "For the fiscal year ended December 31, 2019", "for the quarterly period ended July 29, 2023".
_PERIOD = re.compile(r"(?:fiscal\s+)?(?:year|quarter(?:ly\s+period)?|period|months)\s+ended\s+"
                     r"([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})", re.IGNORECASE)
_FIRST_PAGES_CHARS = 6000


def document_identity(parsed: ParsedDocument) -> str:
    """Who and when a document is about, from what it says of itself: its title, its file name
    (often the only place a filing's company and year are written: "AMAZON_2019_10K") and the
    period named near its start. Neighbouring filings of one company differ only here."""
    # A corpus record's path (beir://<id>) names no file: its id says nothing about the document.
    stem = "" if "://" in parsed.path else re.sub(r"[_\-.]+", " ", PurePath(parsed.path).stem).strip()
    parts = [parsed.title.strip()] if parsed.title.strip() else []
    # The parser falls back to the file stem as title: say it once, however it is spelled.
    if stem and stem.lower() not in re.sub(r"[_\-.]+", " ", parsed.title).lower():
        parts.append(stem)
    m = _PERIOD.search(parsed.text[:_FIRST_PAGES_CHARS])
    if m:
        parts.append("period ended " + " ".join(m.group(1).split()))
    return " | ".join(parts)


def _context(identity: str, draft: ChunkDraft) -> str:
    section = list(draft.heading_path) or ([draft.section] if draft.section else [])
    caption = [draft.caption] if draft.caption and draft.caption not in section else []
    return " > ".join([identity, *section, *caption])


def build_chunks(rec: CollectionRecord, source: SourceFile, parsed: ParsedDocument,
                 drafts: list[ChunkDraft], now: float, contextual: bool = False) -> list[Chunk]:
    document_id = document_id_for(rec.id, source.path)
    identity = document_identity(parsed) if contextual else ""
    return [
        Chunk(
            id=chunk_id_for(document_id, source.file_hash, i),
            document_id=document_id,
            collection=rec.id,
            path=source.path,
            title=parsed.title,
            text=d.text,
            chunk_index=i,
            n_chunks=len(drafts),
            start=d.start,
            end=d.end,
            page=d.page,
            heading_path=list(d.heading_path),
            kind=d.kind,
            context=_context(identity, d) if contextual else "",
            content_hash=hashlib.sha256(d.text.encode("utf-8")).hexdigest(),
            file_hash=source.file_hash,
            file_size=source.size,
            file_mtime=source.mtime,
            pages=parsed.pages,
            access_groups=source.access_groups,
            indexed_at=now,
        )
        for i, d in enumerate(drafts)
    ]


class DocumentIndexer:
    def __init__(self, settings: Settings, index: Index, embedder: PassageEmbedder, batch_chunks: int = 128):
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.batch_chunks = batch_chunks

    def chunk(self, rec: CollectionRecord, source: SourceFile, parsed: ParsedDocument) -> list[Chunk]:
        drafts = chunk_document(
            parsed, self.embedder.count_tokens, self.settings.chunk_tokens, self.settings.chunk_overlap_tokens
        )
        if not drafts:
            raise ParseError("no_text", "no text (scanned?)")
        return build_chunks(rec, source, parsed, drafts, time.time(), self.settings.contextual_chunks)

    def index_all(
        self,
        rec: CollectionRecord,
        items: Iterable[tuple[SourceFile, ParsedDocument]],
        on_error: Callable[[SourceFile, Exception], None] | None = None,
    ) -> Iterator[IndexedDocument]:
        """Index documents, yielding each one once it is written. A document whose chunking
        fails is reported through ``on_error`` (or raised) and does not stop the others."""
        pending: list[tuple[SourceFile, ParsedDocument, list[Chunk], float]] = []
        pending_chunks = 0
        for source, parsed in items:
            started = time.perf_counter()
            try:
                chunks = self.chunk(rec, source, parsed)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(source, exc)
                continue
            pending.append((source, parsed, chunks, time.perf_counter() - started))
            pending_chunks += len(chunks)
            if pending_chunks >= self.batch_chunks:
                yield from self._flush(rec, pending)
                pending, pending_chunks = [], 0
        if pending:
            yield from self._flush(rec, pending)

    def _flush(self, rec: CollectionRecord, pending: list) -> Iterator[IndexedDocument]:
        all_chunks = [c for _, _, chunks, _ in pending for c in chunks]
        texts = [chunk_embedding_text(c) for c in all_chunks]
        started = time.perf_counter()
        dense = self.embedder.embed_passages(texts)
        sparse_vecs = [sparse.encode_document(t) for t in texts]
        per_chunk = (time.perf_counter() - started) / max(len(all_chunks), 1)
        offset = 0
        for source, parsed, chunks, chunk_seconds in pending:
            n = len(chunks)
            t0 = time.perf_counter()
            self.index.write_document(rec, chunks, dense[offset : offset + n], sparse_vecs[offset : offset + n])
            offset += n
            seconds = chunk_seconds + per_chunk * n + (time.perf_counter() - t0)
            yield IndexedDocument(source, parsed, n, seconds)
