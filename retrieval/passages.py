"""From ranked chunks to passages: merge neighbours of one document, stitch text without repeats.

Pure functions over ``Chunk`` records; no index access. Consecutive chunks of one section
overlap by a few sentences (ingest/chunker.py) and every chunk records the ``[start, end)``
slice of the document text it covers, so stitching cuts the overlap by offsets, never by
guessing at string matches. A table continuation carries its header rows in front of its
slice; the header is kept only where a passage starts with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from retrieval.models import Chunk, Passage


@dataclass(frozen=True)
class Ranked:
    chunk: Chunk
    score: float


@dataclass
class _Group:
    chunks: list[Chunk] = field(default_factory=list)
    score: float = float("-inf")
    rank: int = 0  # position of its best chunk in the ranking

    @property
    def key(self) -> tuple[str, str, str]:
        c = self.chunks[0]
        return (c.collection, c.document_id, c.file_hash)


def version_key(c: Chunk) -> tuple[str, str, str]:
    """Chunks merge only within one version of one document."""
    return (c.collection, c.document_id, c.file_hash)


def adjacent(a: Chunk, b: Chunk) -> bool:
    """Neighbours in reading order, or slices of the text that overlap or touch."""
    if version_key(a) != version_key(b):
        return False
    return abs(a.chunk_index - b.chunk_index) <= 1 or (a.start <= b.end and b.start <= a.end)


def _touches(group: _Group, c: Chunk) -> bool:
    return group.key == version_key(c) and any(adjacent(m, c) for m in group.chunks)


def merge_ranked(ranked: Sequence[Ranked], k: int) -> list[tuple[list[Chunk], float]]:
    """Up to ``k`` groups of adjacent chunks, best first; a group scores as its best chunk.

    Chunks are read best first; one that touches a kept group joins it (and may bridge two
    groups into one) instead of taking a slot. Reading stops at the first chunk that would
    open a ``k+1``-th group, so low-ranked chunks never pad a passage. A chunk whose text
    repeats one already kept for the same document (two versions seen during a re-index) is
    dropped.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    groups: list[_Group] = []
    seen_text: set[tuple[str, str, str]] = set()
    for rank, r in enumerate(ranked):
        c = r.chunk
        dup = (c.collection, c.document_id, c.content_hash)
        if dup in seen_text:
            continue
        touching = [g for g in groups if _touches(g, c)]
        if not touching:
            if len(groups) >= k:
                break
            groups.append(_Group([c], r.score, rank))
        else:
            head = touching[0]
            head.chunks.append(c)
            for other in touching[1:]:
                head.chunks.extend(other.chunks)
                head.score = max(head.score, other.score)
                head.rank = min(head.rank, other.rank)
                groups.remove(other)
        seen_text.add(dup)
    groups.sort(key=lambda g: g.rank)
    return [(sorted(g.chunks, key=lambda c: c.chunk_index), g.score) for g in groups]


def span_text(c: Chunk) -> str:
    """The part of ``c.text`` that is exactly ``document_text[c.start:c.end]``."""
    n = c.end - c.start
    return c.text[len(c.text) - n :] if 0 <= n <= len(c.text) else c.text


def _gap(prev_end: int, start: int, table: bool) -> str:
    # The characters between two chunks are whitespace the chunker trimmed: inside a table a
    # row break; otherwise one character is a space inside a paragraph, more the blank line
    # between blocks.
    gap = start - prev_end
    if gap <= 0:
        return ""
    if table:
        return "\n"
    return " " if gap == 1 else "\n\n"


def stitch(chunks: Iterable[Chunk], after: int | None = None, until: int | None = None,
           keep_header: bool = True) -> str:
    """Text of ``chunks`` (in reading order) with overlaps cut by offsets.

    ``after``/``until``: keep only document text from/up to these offsets (a context window
    must not repeat the passage it surrounds). ``keep_header``: a leading table continuation
    keeps the header rows printed in front of it.
    """
    parts: list[str] = []
    cur = after
    prev_table = False
    for c in chunks:
        lo = c.start if cur is None else max(c.start, cur)
        hi = c.end if until is None else min(c.end, until)
        if hi <= lo:
            continue
        whole = span_text(c)
        piece = whole[lo - c.start : hi - c.start]
        if parts:
            parts.append(_gap(cur, lo, c.kind == "table" and prev_table))
        elif keep_header and lo == c.start:
            piece = c.text[: len(c.text) - len(whole)] + piece
        parts.append(piece)
        cur = hi
        prev_table = c.kind == "table"
    return "".join(parts).strip()


def _common_prefix(paths: list[list[str]]) -> list[str]:
    out: list[str] = []
    for level in zip(*paths):
        if len(set(level)) != 1:
            break
        out.append(level[0])
    return out


def to_passage(chunks: Sequence[Chunk], score: float) -> Passage:
    """One passage from adjacent chunks of one document version (sorted by chunk index)."""
    first = chunks[0]
    pages = [c.page for c in chunks if c.page is not None]
    return Passage(
        chunk_ids=[c.id for c in chunks],
        document_id=first.document_id,
        collection=first.collection,
        path=first.path,
        title=first.title,
        text=stitch(chunks),
        start=min(c.start for c in chunks),
        end=max(c.end for c in chunks),
        page=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        heading_path=_common_prefix([c.heading_path for c in chunks]),
        kind="table" if all(c.kind == "table" for c in chunks) else "text",
        score=score,
        page_starts=_page_starts(chunks) if len(set(pages)) > 1 else [],
    )


def _page_starts(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    starts: list[tuple[int, int]] = []
    for c in chunks:
        if c.page is not None and (not starts or starts[-1][1] != c.page):
            starts.append((c.start, c.page))
    return starts


def with_context(passage: Passage, before: Sequence[Chunk], after: Sequence[Chunk]) -> Passage:
    """``passage`` with the text of neighbouring chunks around it, overlap removed."""
    return passage.model_copy(update={
        "context_before": stitch(before, until=passage.start),
        "context_after": stitch(after, after=passage.end, keep_header=False),
    })
