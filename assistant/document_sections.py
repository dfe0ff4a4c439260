"""A document's indexed chunks, turned back into ordered, non-overlapping sections to summarise."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answer_models import SourceSection
from retrieval.models import Chunk


def _label(chunk: Chunk) -> str:
    if chunk.page is not None:
        return f"p. {chunk.page}"
    return " > ".join(chunk.heading_path) or "start"


def sections_from_chunks(chunks: Sequence[Chunk]) -> list[SourceSection]:
    """One section per page (PDF) or heading section (DOCX); the overlap that consecutive
    chunks share is dropped so the model reads every sentence once."""
    sections: list[SourceSection] = []
    covered = 0
    for chunk in sorted(chunks, key=lambda c: c.chunk_index):
        text, start = chunk.text, chunk.start
        if chunk.kind == "text" and chunk.start < covered < chunk.end:
            text, start = chunk.text[covered - chunk.start :], covered
        covered = max(covered, chunk.end)
        label = _label(chunk)
        last = sections[-1] if sections else None
        if last is not None and last.label == label:
            last.text = f"{last.text}\n\n{text.strip()}"
            last.end = chunk.end
        else:
            sections.append(SourceSection(label=label, page=chunk.page, heading_path=list(chunk.heading_path),
                                          start=start, end=chunk.end, text=text.strip()))
    return sections
