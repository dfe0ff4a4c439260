"""What a parser hands to the chunker: the document's text plus blocks that point into it.

Offsets, not copies: every block is a ``[start, end)`` slice of ``ParsedDocument.text`` so that a
chunk can always be traced back to the exact characters (and PDF page) it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BLOCK_SEPARATOR = "\n\n"
ROW_SEPARATOR = "\n"
CELL_SEPARATOR = " | "


@dataclass(frozen=True)
class Block:
    """A unit of extracted text: a paragraph/page-text run, a heading, or a whole table."""

    start: int  # offsets into ParsedDocument.text ([start, end))
    end: int
    kind: Literal["text", "heading", "table"]
    page: int | None = None  # 1-based, PDF only
    heading_path: tuple[str, ...] = ()  # DOCX: ("Heading 1 text", "Heading 2 text", ...) in force at this block
    rows: tuple[tuple[int, int], ...] = ()  # tables: (start, end) of each row's text within ParsedDocument.text
    header_rows: int = 0  # tables: how many leading rows are the header (repeated when a table is split)


@dataclass(frozen=True)
class ParsedDocument:
    path: str
    format: Literal["pdf", "docx"]
    title: str  # document metadata title, else first heading, else file stem
    text: str  # the whole extracted text; blocks point into it
    blocks: tuple[Block, ...]
    pages: int | None  # PDF page count
    empty_pages: tuple[int, ...] = ()  # PDF pages with no text layer (reported, never indexed as empty)

    def block_text(self, block: Block) -> str:
        return self.text[block.start : block.end]


class TextBuilder:
    """Accumulates blocks into one text, keeping offsets exact and the separator rule in one place.

    Parsers only say *what* a block is; the builder decides where it lands in the text, so the
    invariant "blocks are in order, separated by a blank line" cannot drift between formats.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._blocks: list[Block] = []

    def _place(self, text: str) -> int:
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        return start

    def add(
        self,
        text: str,
        kind: Literal["text", "heading"] = "text",
        *,
        page: int | None = None,
        heading_path: tuple[str, ...] = (),
    ) -> None:
        if not text:
            return
        start = self._place(text)
        self._blocks.append(Block(start, start + len(text), kind, page, heading_path))

    def add_table(
        self,
        rows: list[list[str]],
        header_rows: int,
        *,
        page: int | None = None,
        heading_path: tuple[str, ...] = (),
    ) -> None:
        row_texts = [CELL_SEPARATOR.join(cells) for cells in rows]
        if not any(t.strip(" |") for t in row_texts):
            return
        start = self._place(ROW_SEPARATOR.join(row_texts))
        spans: list[tuple[int, int]] = []
        pos = start
        for row_text in row_texts:
            spans.append((pos, pos + len(row_text)))
            pos += len(row_text) + len(ROW_SEPARATOR)
        end = spans[-1][1]
        self._blocks.append(
            Block(start, end, "table", page, heading_path, tuple(spans), min(header_rows, len(rows)))
        )

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(self._blocks)

    @property
    def text(self) -> str:
        return "".join(self._parts)
