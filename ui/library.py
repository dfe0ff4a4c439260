"""What a logged-in user may see: their collections, their documents, summaries of them.

Every function takes the principal and reads through ``retrieval.access.read_filter``, the same
filter search uses, so a page can only ever list what the engine would let that user retrieve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from assistant.answer_models import SourceSection, SummaryEvent
from assistant.document_sections import sections_from_chunks
from retrieval.access import can_read_collection, can_write_collection, read_filter
from retrieval.catalog import CollectionRecord
from retrieval.index import DocumentInfo
from retrieval.models import Chunk, Passage, Principal
from retrieval.store.base import Filter, Match
from ui.services import Resources

_FIRST_CHUNK = Filter(must=(Match("chunk_index", (0,)),))


class DocumentUnavailableError(PermissionError):
    """Missing, disabled and forbidden read the same to the user: nothing leaks by the wording."""

    def __init__(self) -> None:
        super().__init__("This document is not available to you: it was removed or disabled, "
                         "or you do not have access to it.")


class NoLanguageModelError(RuntimeError):
    def __init__(self, notice: str | None):
        super().__init__((notice or "No language model is configured.") + " Summaries need one; "
                         "ask an administrator to set DOCENT_LLM_BASE_URL or the local model.")


@dataclass(frozen=True)
class CollectionView:
    rec: CollectionRecord
    can_write: bool
    documents: int


def _has_index(res: Resources, rec: CollectionRecord) -> bool:
    return res.workspace.index.exists(rec)


def _visible_docs(res: Resources, principal: Principal, rec: CollectionRecord,
                  extra: Filter | None = None) -> list[DocumentInfo]:
    if not _has_index(res, rec):
        return []
    flt = _FIRST_CHUNK.and_(read_filter(principal, rec)).and_(extra)
    latest: dict[str, DocumentInfo] = {}
    for chunk in res.workspace.index.iter_chunks(rec, flt):
        info = DocumentInfo.from_chunk(chunk)
        # Two versions are visible only between a crash and the next run: show the newer.
        if chunk.document_id not in latest or info.indexed_at > latest[chunk.document_id].indexed_at:
            latest[chunk.document_id] = info
    return sorted(latest.values(), key=lambda d: (d.title.lower(), d.path))


def readable_collections(res: Resources, principal: Principal) -> list[CollectionView]:
    """Collections the user may read, plus those where a document override grants them one."""
    views: list[CollectionView] = []
    for rec in res.workspace.catalog.list_collections():
        docs = len(_visible_docs(res, principal, rec))
        if can_read_collection(principal, rec) or docs:
            views.append(CollectionView(rec, can_write_collection(principal, rec), docs))
    return views


def writable_collections(res: Resources, principal: Principal) -> list[CollectionRecord]:
    return [r for r in res.workspace.catalog.list_collections() if can_write_collection(principal, r)]


def readable_documents(res: Resources, principal: Principal, collections: list[str]) -> list[DocumentInfo]:
    docs: list[DocumentInfo] = []
    for name in collections:
        rec = res.workspace.catalog.find(name)
        if rec is not None:
            docs.extend(_visible_docs(res, principal, rec))
    return docs


def readable_document(res: Resources, principal: Principal, collection_id: str, document_id: str) -> DocumentInfo:
    """The document if ``principal`` may read it now; the one gate every download passes."""
    rec = res.workspace.catalog.find(collection_id)
    if rec is None:
        raise DocumentUnavailableError()
    found = _visible_docs(res, principal, rec, Filter(must=(Match("document_id", (document_id,)),)))
    if not found:
        raise DocumentUnavailableError()
    return found[0]


NO_LONGER_AVAILABLE = "This source is no longer available to you."


def unreadable_documents(res: Resources, principal: Principal, passages: Iterable[Passage]) -> set[tuple[str, str]]:
    """``(collection, document_id)`` of the passages' documents the user may not read now, one
    check per document: passages kept in a session must not outlive a revoked access."""
    gone: set[tuple[str, str]] = set()
    for key in {(p.collection, p.document_id) for p in passages}:
        try:
            readable_document(res, principal, *key)
        except DocumentUnavailableError:
            gone.add(key)
    return gone


def readable_chunks(res: Resources, principal: Principal, collection_id: str, document_id: str) -> list[Chunk]:
    info = readable_document(res, principal, collection_id, document_id)
    rec = res.workspace.catalog.get(collection_id)
    chunks = res.workspace.index.document_chunks(rec, document_id, read_filter(principal, rec))
    return [c for c in chunks if c.file_hash == info.file_hash]


def summary_sections(res: Resources, principal: Principal, collection_id: str, document_id: str) -> list[SourceSection]:
    # The summariser numbers non-empty sections only; dropping empty ones keeps [n] == index + 1.
    sections = sections_from_chunks(readable_chunks(res, principal, collection_id, document_id))
    return [s for s in sections if s.text.strip()]


def stream_summary(res: Resources, principal: Principal, collection_id: str, document_id: str,
                   sections: list[SourceSection]) -> Iterator[SummaryEvent]:
    """The summariser's events through the guard ``docent summarize`` uses too: rate limit,
    output safety policy, one audit line. Raises ``SummaryRefusedError`` when either stops it."""
    from assistant.summarizer import stream_summary as summarize_stream

    llm = res.llm
    if llm.client is None:
        raise NoLanguageModelError(llm.notice)
    return res.guard.stream_summary(
        principal, [collection_id], document_id,
        lambda: summarize_stream(sections, llm.client, max_tokens=res.settings.llm_answer_tokens))


def quote_locations(res: Resources, answer) -> dict[int, tuple[int | None, str | None]]:
    """Where each cited quote sits: its page, and the text of the chunk holding it.

    A passage merged across a page break carries its first page, but the quote may sit on a
    later one; "open at page" must land there, and the card should show that page's text."""
    from retrieval.passages import stitch
    from ui.render import cited_numbers, quotes_for

    found: dict[int, tuple[int | None, str | None]] = {}
    for n in cited_numbers(answer):
        p = answer.passages[n - 1]
        found[n] = (p.page, None)
        if p.page is None or p.page_end in (None, p.page):
            continue
        rec = res.workspace.catalog.find(p.collection)
        quotes = [q.strip() for q in quotes_for(answer, n) if q.strip()]
        if rec is None or not quotes:
            continue
        chunks = res.workspace.index.store.retrieve(res.workspace.index.target(rec), p.chunk_ids)
        for c in sorted(chunks, key=lambda c: c.chunk_index):
            if quotes[0] in c.text and c.page is not None:
                same_page = [x for x in chunks if x.page == c.page]
                found[n] = (c.page, stitch(sorted(same_page, key=lambda x: x.chunk_index)))
                break
    return found
