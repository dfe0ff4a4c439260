"""Reading, for any logged-in user: their collections, their documents, a document's text, a
cited passage again, the page a quote sits on.

Every method takes the principal and reads through ``retrieval.access.read_filter``, the same
filter search uses, so a front end can only ever list or show what the engine would let that
user retrieve. :meth:`Library.document` is the one gate every later read passes (text,
preview, download, page image); nothing is cached before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from assistant.answer_models import SourceSection
from assistant.document_sections import sections_from_chunks
from retrieval.access import can_read_collection, can_write_collection, read_filter
from retrieval.catalog import CatalogError, CollectionRecord
from retrieval.index import DocumentInfo
from retrieval.models import Chunk, Passage, Principal
from retrieval.store.base import Filter, Match
from ui.usecases.errors import DocumentUnavailableError

_FIRST_CHUNK = Filter(must=(Match("chunk_index", (0,)),))


@dataclass(frozen=True)
class CollectionView:
    rec: CollectionRecord
    can_write: bool
    documents: int


def matches_key(doc: DocumentInfo, key: str) -> bool:
    """A document named on the command line: its id, its path, or its file name."""
    return key in (doc.document_id, doc.path) or doc.path.endswith("/" + key)


class Library:
    def _visible_docs(self, principal: Principal, rec: CollectionRecord,
                      extra: Filter | None = None) -> list[DocumentInfo]:
        index = self.workspace.index
        if not index.exists(rec):
            return []
        flt = _FIRST_CHUNK.and_(read_filter(principal, rec)).and_(extra)
        latest: dict[str, DocumentInfo] = {}
        for chunk in index.iter_chunks(rec, flt):
            info = DocumentInfo.from_chunk(chunk)
            # Two versions are visible only between a crash and the next run: show the newer.
            if chunk.document_id not in latest or info.indexed_at > latest[chunk.document_id].indexed_at:
                latest[chunk.document_id] = info
        return sorted(latest.values(), key=lambda d: (d.title.lower(), d.path))

    def collections(self, principal: Principal) -> list[CollectionView]:
        """Collections the user may read, plus those where a document override grants them one."""
        views: list[CollectionView] = []
        for rec in self.workspace.catalog.list_collections():
            docs = len(self._visible_docs(principal, rec))
            if can_read_collection(principal, rec) or docs:
                views.append(CollectionView(rec, can_write_collection(principal, rec), docs))
        return views

    def readable_collections(self, principal: Principal) -> list[CollectionRecord]:
        """The collections of :meth:`collections` without counting documents: one cheap check per
        request (the API resolves its models on every call)."""
        return [rec for rec in self.workspace.catalog.list_collections()
                if can_read_collection(principal, rec) or self._visible_docs(principal, rec)]

    def writable_collections(self, principal: Principal) -> list[CollectionRecord]:
        return [r for r in self.workspace.catalog.list_collections() if can_write_collection(principal, r)]

    def documents(self, principal: Principal, collections: list[str]) -> list[DocumentInfo]:
        docs: list[DocumentInfo] = []
        for name in collections:
            rec = self.workspace.catalog.find(name)
            if rec is not None:
                docs.extend(self._visible_docs(principal, rec))
        return docs

    def document(self, principal: Principal, collection: str, document_id: str) -> DocumentInfo:
        """The document if ``principal`` may read it now, else ``DocumentUnavailableError``."""
        rec = self.workspace.catalog.find(collection)
        if rec is None:
            raise DocumentUnavailableError()
        found = self._visible_docs(principal, rec, Filter(must=(Match("document_id", (document_id,)),)))
        if not found:
            raise DocumentUnavailableError()
        return found[0]

    def find_document(self, principal: Principal, collection: str, key: str) -> DocumentInfo:
        """A readable document by id, path or file name; the same words whether it is missing or
        forbidden (no existence leak)."""
        rec = self.workspace.catalog.get(collection)  # raises, naming the known collections
        for doc in self._visible_docs(principal, rec):
            if matches_key(doc, key):
                return doc
        raise CatalogError(f"no document {key!r} that you may read in {rec.name!r}")

    def unreadable_documents(self, principal: Principal, passages: Iterable[Passage]) -> set[tuple[str, str]]:
        """``(collection, document_id)`` of the passages' documents the user may not read now, one
        check per document: passages kept in a session must not outlive a revoked access."""
        gone: set[tuple[str, str]] = set()
        for key in {(p.collection, p.document_id) for p in passages}:
            try:
                self.document(principal, *key)
            except DocumentUnavailableError:
                gone.add(key)
        return gone

    def preview(self, principal: Principal, passage: Passage) -> Passage:
        """A passage found earlier, shown again only if its document is still readable."""
        self.document(principal, passage.collection, passage.document_id)
        return passage

    def read_document(self, principal: Principal, collection: str, document_id: str) -> list[Chunk]:
        """The readable document's current version, chunk by chunk."""
        info = self.document(principal, collection, document_id)
        rec = self.workspace.catalog.get(collection)
        chunks = self.workspace.index.document_chunks(rec, document_id, read_filter(principal, rec))
        return [c for c in chunks if c.file_hash == info.file_hash]

    def summary_sections(self, principal: Principal, collection: str, document_id: str) -> list[SourceSection]:
        # The summariser numbers non-empty sections only; dropping empty ones keeps [n] == index + 1.
        sections = sections_from_chunks(self.read_document(principal, collection, document_id))
        return [s for s in sections if s.text.strip()]

    def quote_locations(self, principal: Principal, answer) -> dict[int, tuple[int | None, str | None]]:
        """Where each cited quote sits: its page, and the text of the chunk holding it.

        A passage merged across a page break carries its first page, but the quote may sit on a
        later one; "open at page" must land there, and the card should show that page's text.
        Only chunks of the cited passage, under the reader's filter, are looked at."""
        from retrieval.passages import stitch
        from ui.render import cited_numbers, quotes_for

        found: dict[int, tuple[int | None, str | None]] = {}
        index = self.workspace.index
        for n in cited_numbers(answer):
            p = answer.passages[n - 1]
            found[n] = (p.page, None)
            if p.page is None or p.page_end in (None, p.page):
                continue
            rec = self.workspace.catalog.find(p.collection)
            quotes = [q.strip() for q in quotes_for(answer, n) if q.strip()]
            if rec is None or not quotes:
                continue
            flt = Filter(must=(Match("document_id", (p.document_id,)),)).and_(read_filter(principal, rec))
            chunks = [c for c in index.iter_chunks(rec, flt) if c.id in set(p.chunk_ids)]
            for c in sorted(chunks, key=lambda c: c.chunk_index):
                if quotes[0] in c.text and c.page is not None:
                    same_page = [x for x in chunks if x.page == c.page]
                    found[n] = (c.page, stitch(sorted(same_page, key=lambda x: x.chunk_index)))
                    break
        return found
