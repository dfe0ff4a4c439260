"""Split a parsed document into passages measured in the embedding model's tokens.

Rules, in order of importance:
- a passage never crosses a page (PDF) or a heading section (DOCX), so every passage has
  exactly one citation target;
- paragraphs are kept whole when they fit; longer ones split at sentence ends, Chinese
  sentence punctuation (。！？；) included, and only over-long sentences are cut inside;
- table rows stay whole, and a table split over several passages repeats its header rows;
- consecutive passages of one section overlap by about ``overlap`` tokens of whole sentences.

Each draft records offsets into the document's extracted text, so a quote can be located
exactly; table continuations carry the header text in front of the row span they point at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Literal

from ingest.parsed import Block, ParsedDocument

TokenCounter = Callable[[str], int]

# A sentence ends at . ! ? followed by space, or right after 。！？； (CJK needs no space),
# optionally followed by closing quotes/brackets.
_SENTENCE_END = re.compile(r"(?:[.!?](?=\s)|[。！？；!?;](?![.!?]))[\"'”’）)\]」』]*\s*")


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    start: int
    end: int
    page: int | None
    heading_path: tuple[str, ...]
    kind: Literal["text", "table"]
    # Where the passage sits, for contextual embedding only (never shown or quoted): the nearest
    # heading above it (PDFs have no heading_path) and, for a table, the short line before it.
    section: str = ""
    caption: str = ""


@dataclass(frozen=True)
class _Unit:
    """A piece that is never split further: a sentence, a paragraph, or a table row."""

    start: int
    end: int
    tokens: int


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` in absolute offsets, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.end() > pos:
            spans.append((pos, m.end()))
            pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_split(text: str, start: int, end: int, limit: int, count: TokenCounter) -> Iterator[_Unit]:
    """Cut a sentence longer than ``limit`` tokens at word (or CJK character) boundaries."""
    piece_start = start
    while piece_start < end:
        lo, hi = piece_start + 1, end
        # Binary search for the longest prefix within the limit: O(log n) tokenizer calls.
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[piece_start:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        if cut < end:
            space = text.rfind(" ", piece_start + 1, cut)
            if space > piece_start + (cut - piece_start) // 2:
                cut = space
        a, b = _trim(text, piece_start, cut)
        if b > a:
            yield _Unit(a, b, count(text[a:b]))
        piece_start = cut


def _text_units(doc: ParsedDocument, block: Block, limit: int, count: TokenCounter) -> Iterator[_Unit]:
    a, b = _trim(doc.text, block.start, block.end)
    if b <= a:
        return
    tokens = count(doc.text[a:b])
    if tokens <= limit:
        yield _Unit(a, b, tokens)
        return
    for s, e in sentence_spans(doc.text, a, b):
        n = count(doc.text[s:e])
        if n <= limit:
            yield _Unit(s, e, n)
        else:
            yield from _hard_split(doc.text, s, e, limit, count)


def _pack(units: list[_Unit], limit: int, overlap: int) -> Iterator[list[_Unit]]:
    """Greedy packing with whole-unit overlap between consecutive groups."""
    group: list[_Unit] = []
    size = 0
    for unit in units:
        if group and size + unit.tokens > limit:
            yield group
            carry: list[_Unit] = []
            carried = 0
            for prev in reversed(group):
                if carried + prev.tokens > overlap or carried + prev.tokens + unit.tokens > limit:
                    break
                carry.insert(0, prev)
                carried += prev.tokens
            group, size = carry, carried
        group.append(unit)
        size += unit.tokens
    if group:
        yield group


def _sections(blocks: Iterable[Block]) -> Iterator[list[Block]]:
    """Runs of blocks sharing one citation target; tables are sections of their own."""
    current: list[Block] = []
    key = None
    for block in blocks:
        if block.kind == "heading":
            # The heading text lives in heading_path of the blocks below it.
            continue
        block_key = (block.page, block.heading_path)
        if block.kind == "table" or block_key != key:
            if current:
                yield current
            current = []
            key = block_key
        current.append(block)
        if block.kind == "table":
            yield current
            current, key = [], None
    if current:
        yield current


def _table_drafts(doc: ParsedDocument, table: Block, limit: int, count: TokenCounter) -> Iterator[ChunkDraft]:
    rows = [r for r in table.rows if r[1] > r[0]] or [(table.start, table.end)]
    n_header = min(table.header_rows, len(rows) - 1) if len(rows) > 1 else 0
    header = "\n".join(doc.text[a:b] for a, b in rows[:n_header])
    header_tokens = count(header) if header else 0
    body = [_Unit(a, b, count(doc.text[a:b])) for a, b in rows[n_header:]]
    budget = max(limit - header_tokens, limit // 2)
    for i, group in enumerate(_pack(body, budget, overlap=0)):
        start, end = group[0].start, group[-1].end
        if i == 0 and n_header:
            start = rows[0][0]
            text = doc.text[start:end]
        else:
            text = (header + "\n" if header else "") + doc.text[start:end]
        yield ChunkDraft(text, start, end, table.page, table.heading_path, "table")


_CAPTION_MAX = 160  # characters: a longer block before a table is body text, not its caption


def _surroundings(doc: ParsedDocument) -> dict[int, tuple[str, str]]:
    """Per block (by id): the latest heading text above it and the block right before it when
    short (a table's caption). One pass, so chunking stays linear."""
    out: dict[int, tuple[str, str]] = {}
    heading = previous = ""
    for block in doc.blocks:
        out[id(block)] = (heading, previous)
        text = " ".join(doc.block_text(block).split())
        if block.kind == "heading":
            heading = text[:_CAPTION_MAX]
        previous = text if block.kind != "table" and len(text) <= _CAPTION_MAX else ""
    return out


def chunk_document(doc: ParsedDocument, count: TokenCounter, limit: int, overlap: int) -> list[ChunkDraft]:
    """All passages of ``doc`` in reading order."""
    if limit <= 0 or overlap < 0 or overlap >= limit:
        raise ValueError(f"need 0 <= overlap < limit, got limit={limit}, overlap={overlap}")
    around = _surroundings(doc)
    drafts: list[ChunkDraft] = []
    for section in _sections(doc.blocks):
        first = section[0]
        heading, previous = around[id(first)]
        if first.kind == "table":
            drafts.extend(replace(d, section=heading, caption=previous)
                          for d in _table_drafts(doc, first, limit, count))
            continue
        units = [u for block in section for u in _text_units(doc, block, limit, count)]
        for group in _pack(units, limit, overlap):
            start, end = group[0].start, group[-1].end
            drafts.append(ChunkDraft(doc.text[start:end], start, end, first.page, first.heading_path, "text",
                                     section=heading))
    return drafts
