"""Typed records that cross package boundaries: what is stored in the index and what search returns."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

# Namespace for deterministic ids: same input, same ids, on every machine.
DOCENT_NAMESPACE = uuid.UUID("6f1d3c52-8a7e-4f0b-9a51-2f3c9e0d7b14")


def document_id_for(collection: str, path: str) -> str:
    """A document keeps its id across versions: it is its place, not its content."""
    return str(uuid.uuid5(DOCENT_NAMESPACE, f"doc\x00{collection}\x00{path}"))


def chunk_id_for(document_id: str, file_hash: str, index: int) -> str:
    """A chunk id names one version of one document, so a new version never overwrites the old
    one in place: new chunks are written first, old ones deleted after (no gap in visibility)."""
    return str(uuid.uuid5(DOCENT_NAMESPACE, f"chunk\x00{document_id}\x00{file_hash}\x00{index}"))


class Chunk(BaseModel):
    """One indexed passage with exact provenance."""

    id: str
    document_id: str
    collection: str
    path: str
    title: str
    text: str
    chunk_index: int
    n_chunks: int
    start: int = Field(description="Offset of the passage in the document's extracted text.")
    end: int
    page: int | None = Field(default=None, description="1-based PDF page.")
    heading_path: list[str] = Field(default_factory=list, description="DOCX: Heading 1 > Heading 2 …")
    kind: Literal["text", "table"] = "text"
    context: str = Field(default="", description="Contextual chunk text: prepended to what is embedded and "
                         "keyword-indexed, never shown or quoted (offsets refer to ``text`` alone).")
    content_hash: str = Field(description="sha256 of the chunk text.")
    file_hash: str = Field(description="sha256 of the source file; the document's version.")
    file_size: int = 0
    file_mtime: float = 0.0
    pages: int | None = None
    access_groups: list[str] | None = Field(
        default=None, description="Document-level override; None = the collection's groups apply."
    )
    disabled: bool = False
    indexed_at: float = 0.0

    def payload(self) -> dict:
        data = self.model_dump(exclude={"id"})
        # Qdrant cannot match "field is null" and "field is absent" the same way in every
        # engine; an explicit flag keeps the access filter simple and identical everywhere.
        data["has_override"] = self.access_groups is not None
        data["access_groups"] = self.access_groups or []
        return data

    @classmethod
    def from_payload(cls, point_id: str, payload: dict) -> "Chunk":
        data = dict(payload)
        if not data.pop("has_override", False):
            data["access_groups"] = None
        else:
            data.pop("has_override", None)
        return cls(id=str(point_id), **data)


class Principal(BaseModel):
    """Who is asking. Search applies the access filter built from this."""

    user: str
    groups: list[str] = Field(default_factory=list)
    is_admin: bool = False


class Passage(BaseModel):
    """A search result: one or more adjacent chunks of one document, merged."""

    chunk_ids: list[str]
    document_id: str
    collection: str
    path: str
    title: str
    text: str
    start: int
    end: int
    page: int | None = None
    page_end: int | None = None
    heading_path: list[str] = Field(default_factory=list)
    kind: Literal["text", "table"] = "text"
    score: float
    context_before: str = ""
    context_after: str = ""
    page_starts: list[tuple[int, int]] = Field(
        default_factory=list,
        description="(document offset, page) where each page of a passage merged over page breaks begins.")

    def page_at(self, offset: int) -> int | None:
        """The page the text at document ``offset`` is on: a quote from the second page of a
        passage merged over a page break cites that page, not the passage's first."""
        page = self.page
        for start, number in self.page_starts:
            if start <= offset:
                page = number
        return page


class SearchReport(BaseModel):
    """What a search did, so absent stages are never hidden."""

    mode: Literal["dense", "sparse", "hybrid", "hybrid+rerank"]
    stages: list[str]
    collections: list[str]
    retrieval_ms: float
    passages: list[Passage]
