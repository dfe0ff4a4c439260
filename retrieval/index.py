"""Docent's view of the index: collections by name, documents as versioned sets of chunks.

Writing a document version is ordered so that readers and crashes never see a gap:
1. all chunks except chunk 0 are upserted, 2. chunk 0 is upserted last — its presence marks
the version complete, 3. every other version of the document is deleted, its chunks other
than chunk 0 first and its chunk 0 last, so a half-deleted version still has its marker and
is found (and finished) by the next run. A crash between any two steps leaves either the old
version visible or both; the next run finishes the job. ``crash_point`` names each step so
tests/test_ingest_cli.py can kill the process at every one of them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from retrieval.catalog import Catalog, CollectionRecord
from retrieval.models import Chunk
from retrieval.settings import Settings
from retrieval.store.base import Filter, Match, SparseVec, VectorStore


class IndexModelMismatchError(RuntimeError):
    """The collection was built with another embedding model: its vectors cannot be mixed."""


@dataclass(frozen=True)
class DocumentInfo:
    document_id: str
    collection: str
    path: str
    title: str
    file_hash: str
    n_chunks: int
    pages: int | None
    file_size: int
    file_mtime: float
    indexed_at: float
    disabled: bool
    access_groups: list[str] | None

    @classmethod
    def from_chunk(cls, c: Chunk) -> "DocumentInfo":
        return cls(c.document_id, c.collection, c.path, c.title, c.file_hash, c.n_chunks, c.pages,
                   c.file_size, c.file_mtime, c.indexed_at, c.disabled, c.access_groups)


_FIRST_CHUNK = Match("chunk_index", (0,))

CRASH_STEPS = ("mid_body", "after_body", "after_marker", "mid_delete", "after_delete")


def crash_point(step: str) -> None:
    """TEST-ONLY fault hook: with ``DOCENT_TEST_CRASH_AT=<step>`` in the environment the process
    SIGKILLs itself when the write order reaches ``step`` (one of ``CRASH_STEPS``), as a power cut
    or ``kill -9`` would, so the crash tests can stop it at every step on every machine. Unset
    (always, outside tests) it does nothing."""
    if os.environ.get("DOCENT_TEST_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


RemovalHook = Callable[[Settings, str], object]


def _doc(document_id: str) -> Match:
    return Match("document_id", (document_id,))


class Index:
    def __init__(self, settings: Settings, store: VectorStore, catalog: Catalog,
                 on_removed: Sequence[RemovalHook] = ()):
        self.settings = settings
        self.store = store
        self.catalog = catalog
        # Called as hook(settings, document_id) after each removal: what lives above retrieval
        # (answer feedback quoting the document) is forgotten with it, without an upward import.
        self.on_removed = tuple(on_removed)

    # --- naming: a stable alias per collection, a physical collection per version ----------
    def alias(self, rec: CollectionRecord) -> str:
        return f"{self.settings.collection_prefix}{rec.id}"

    def physical(self, rec: CollectionRecord, version: int | None = None) -> str:
        return f"{self.alias(rec)}_v{version or rec.version}"

    def target(self, rec: CollectionRecord) -> str:
        """The physical collection the alias points at right now (re-read on every call so a
        re-index switch is picked up at once)."""
        return self.store.resolve_alias(self.alias(rec)) or self.physical(rec)

    def ensure(self, rec: CollectionRecord, model_id: str, dim: int) -> CollectionRecord:
        if rec.model_id and (rec.model_id != model_id or rec.dim != dim):
            raise IndexModelMismatchError(
                f"collection {rec.name!r} was indexed with {rec.model_id} ({rec.dim}-d) but the configured "
                f"embedding model is {model_id} ({dim}-d); run `docent reindex --collection {rec.name}`"
            )
        name = self.physical(rec)
        if name not in self.store.list_collections():
            self.store.ensure_collection(name, dim)
        if self.store.resolve_alias(self.alias(rec)) is None:
            self.store.set_alias(self.alias(rec), name)
        if rec.model_id is None:
            self.catalog.set_model(rec.id, model_id, dim)
            rec = self.catalog.get(rec.id)
        return rec

    def exists(self, rec: CollectionRecord) -> bool:
        return self.target(rec) in self.store.list_collections()

    def drop(self, rec: CollectionRecord) -> None:
        names = set(self.store.list_collections())
        for version in range(1, rec.version + 2):
            if self.physical(rec, version) in names:
                self.store.drop_collection(self.physical(rec, version))

    # --- documents ------------------------------------------------------------------
    def write_document(self, rec: CollectionRecord, chunks: Sequence[Chunk],
                       dense: Sequence[Sequence[float]], sparse: Sequence[SparseVec]) -> None:
        if not chunks:
            raise ValueError("a document version needs at least one chunk")
        assert chunks[0].chunk_index == 0, "chunks must be in order"
        name = self.target(rec)
        chunks = self._carry_document_state(rec, chunks)
        # The body goes in two parts: the stores write large upserts in batches anyway, so a crash
        # can land inside the body, and the split lets the crash tests stop it there too.
        middle = 1 + (len(chunks) - 1) // 2
        for lo, hi in ((1, middle), (middle, len(chunks))):
            if hi > lo:
                self.store.upsert(name, chunks[lo:hi], dense[lo:hi], sparse[lo:hi])
                crash_point("mid_body" if hi < len(chunks) else "after_body")
        self.store.upsert(name, chunks[:1], dense[:1], sparse[:1])  # the completion marker
        crash_point("after_marker")
        self.remove_other_versions(rec, chunks[0].document_id, chunks[0].file_hash)
        crash_point("after_delete")

    def _carry_document_state(self, rec: CollectionRecord, chunks: Sequence[Chunk]) -> list[Chunk]:
        """The access override and the disabled flag belong to the document (its path in the
        collection), not to one version: every new version (batch ingest, upload, re-index of
        one document, reindex) takes them from the version already indexed, here, in one place,
        so no caller can forget them; a renamed or moved file takes them from the entry of its
        old path. With neither, the chunks' own values stand."""
        current = self.get_document(rec, chunks[0].document_id) or self._moved_from(rec, chunks[0])
        if current is None:
            return list(chunks)
        state = {"access_groups": current.access_groups, "disabled": current.disabled}
        return [c.model_copy(update=state) for c in chunks]

    def _moved_from(self, rec: CollectionRecord, first: Chunk) -> DocumentInfo | None:
        """A document of the same content whose file is gone: ``first``'s file was renamed or
        moved, and is the same document to its readers (the stale entry is pruned later)."""
        flt = Filter(must=(_FIRST_CHUNK, Match("file_hash", (first.file_hash,))))
        for chunk in self.store.scroll(self.target(rec), flt):
            if chunk.path != first.path and not os.path.exists(chunk.path):
                return DocumentInfo.from_chunk(chunk)
        return None

    def remove_other_versions(self, rec: CollectionRecord, document_id: str, keep_hash: str) -> None:
        others = Filter(must=(_doc(document_id),), must_not=(Match("file_hash", (keep_hash,)),))
        # Markers last: until its chunk 0 goes, a half-deleted version is still listed by
        # document_versions, so the next run sees two versions and cleans up.
        self.store.delete(self.target(rec), others.and_(Filter(must_not=(_FIRST_CHUNK,))))
        crash_point("mid_delete")
        self.store.delete(self.target(rec), others)

    def remove_document(self, rec: CollectionRecord, document_id: str) -> None:
        self.store.delete(self.target(rec), Filter(must=(_doc(document_id),)))
        # Answer feedback may quote the document: its text goes with it. Every removal (UI,
        # CLI, ingestion's prune) comes through here; the composition root hands in the hook.
        for hook in self.on_removed:
            hook(self.settings, document_id)

    def document_versions(self, rec: CollectionRecord) -> dict[str, list[DocumentInfo]]:
        """Complete versions by path (more than one only after an interrupted run)."""
        versions: dict[str, list[DocumentInfo]] = {}
        for chunk in self.store.scroll(self.target(rec), Filter(must=(_FIRST_CHUNK,))):
            versions.setdefault(chunk.path, []).append(DocumentInfo.from_chunk(chunk))
        return versions

    def list_documents(self, rec: CollectionRecord) -> list[DocumentInfo]:
        docs = [v[0] for v in self.document_versions(rec).values()]
        return sorted(docs, key=lambda d: d.path)

    def get_document(self, rec: CollectionRecord, document_id: str) -> DocumentInfo | None:
        for chunk in self.store.scroll(self.target(rec), Filter(must=(_doc(document_id), _FIRST_CHUNK))):
            return DocumentInfo.from_chunk(chunk)
        return None

    def document_chunks(self, rec: CollectionRecord, document_id: str, flt: Filter | None = None) -> list[Chunk]:
        """All chunks of the document's current version, in order."""
        base = Filter(must=(_doc(document_id),))
        chunks = list(self.store.scroll(self.target(rec), base.and_(flt)))
        info = self.get_document(rec, document_id)
        if info is not None:
            chunks = [c for c in chunks if c.file_hash == info.file_hash]
        return sorted(chunks, key=lambda c: c.chunk_index)

    def set_disabled(self, rec: CollectionRecord, document_id: str, disabled: bool) -> None:
        self.store.set_payload(self.target(rec), Filter(must=(_doc(document_id),)), {"disabled": disabled})

    def set_access(self, rec: CollectionRecord, document_id: str, groups: list[str] | None) -> None:
        payload = {"has_override": groups is not None, "access_groups": groups or []}
        self.store.set_payload(self.target(rec), Filter(must=(_doc(document_id),)), payload)

    def iter_chunks(self, rec: CollectionRecord, flt: Filter | None = None) -> Iterator[Chunk]:
        return self.store.scroll(self.target(rec), flt)

    def count(self, rec: CollectionRecord, flt: Filter | None = None) -> int:
        return self.store.count(self.target(rec), flt)
