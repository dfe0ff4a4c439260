"""Chunking rules: token limits, sentence boundaries (Chinese too), sections, tables, overlap, offsets."""

from __future__ import annotations

import re

import pytest

from ingest.chunker import chunk_document, sentence_spans
from ingest.parsed import Block, ParsedDocument


def words(text: str) -> int:
    """A stand-in token counter: words, and each CJK character as one token."""
    return len(re.findall(r"[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+", text))


def make_doc(parts: list[tuple[str, dict]], fmt: str = "pdf") -> ParsedDocument:
    text = ""
    blocks = []
    for body, meta in parts:
        if text:
            text += "\n\n"
        start = len(text)
        text += body
        rows = ()
        if meta.get("kind") == "table":
            rows, pos = [], start
            for line in body.split("\n"):
                rows.append((pos, pos + len(line)))
                pos += len(line) + 1
            rows = tuple(rows)
        blocks.append(Block(start=start, end=len(text), kind=meta.get("kind", "text"), page=meta.get("page"),
                            heading_path=tuple(meta.get("heading_path", ())), rows=rows,
                            header_rows=meta.get("header_rows", 0)))
    return ParsedDocument(path="/x", format=fmt, title="T", text=text, blocks=tuple(blocks), pages=None)


def test_chinese_sentence_punctuation_splits():
    text = "年假十五天。病假需证明！远程办公吗？每周两天；须在线"
    spans = [text[a:b] for a, b in sentence_spans(text, 0, len(text))]
    assert spans == ["年假十五天。", "病假需证明！", "远程办公吗？", "每周两天；", "须在线"]


def test_english_sentences_do_not_split_inside_numbers():
    text = "The limit is 3.5 days. Then it ends! Really?"
    spans = [text[a:b] for a, b in sentence_spans(text, 0, len(text))]
    assert spans == ["The limit is 3.5 days.", "Then it ends!", "Really?"]


def test_chunks_respect_limit_and_offsets_are_exact():
    para = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(60))
    doc = make_doc([(para, {"page": 1}), ("Short closing paragraph.", {"page": 1})])
    chunks = chunk_document(doc, words, limit=50, overlap=10)
    assert len(chunks) > 5
    for c in chunks:
        assert words(c.text) <= 50
        assert doc.text[c.start : c.end] == c.text
        assert c.page == 1
    # Whole sentences only: every chunk ends at a sentence end.
    assert all(c.text.rstrip().endswith(".") for c in chunks)


def test_overlap_repeats_tail_sentences():
    para = " ".join(f"Fact {i} is stated here." for i in range(40))
    doc = make_doc([(para, {"page": 1})])
    chunks = chunk_document(doc, words, limit=30, overlap=10)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks overlap"
        assert a.end - b.start <= len(a.text)
    no_overlap = chunk_document(doc, words, limit=30, overlap=0)
    assert all(b.start >= a.end for a, b in zip(no_overlap, no_overlap[1:]))


def test_never_crosses_pages_or_headings():
    doc = make_doc([
        ("Alpha on page one.", {"page": 1}),
        ("Beta on page two.", {"page": 2}),
        ("Gamma under intro.", {"heading_path": ("Intro",)}),
        ("Delta under scope.", {"heading_path": ("Intro", "Scope")}),
    ])
    chunks = chunk_document(doc, words, limit=500, overlap=0)
    assert [(c.text, c.page, c.heading_path) for c in chunks] == [
        ("Alpha on page one.", 1, ()),
        ("Beta on page two.", 2, ()),
        ("Gamma under intro.", None, ("Intro",)),
        ("Delta under scope.", None, ("Intro", "Scope")),
    ]


def test_paragraphs_of_one_page_are_packed_together():
    doc = make_doc([("One two three.", {"page": 3}), ("Four five six.", {"page": 3})])
    chunks = chunk_document(doc, words, limit=100, overlap=0)
    assert len(chunks) == 1
    assert chunks[0].text == "One two three.\n\nFour five six."


def test_overlong_sentence_is_hard_split_within_limit():
    long_sentence = " ".join(["word"] * 130)
    cjk = "中" * 90
    doc = make_doc([(long_sentence, {"page": 1}), (cjk, {"page": 2})])
    chunks = chunk_document(doc, words, limit=40, overlap=5)
    assert all(words(c.text) <= 40 for c in chunks)
    assert sum(words(c.text) for c in chunks if c.page == 1) == 130
    assert "".join(c.text for c in chunks if c.page == 2) == cjk


def test_table_split_repeats_header_and_keeps_rows_whole():
    rows = ["City | Hotel | Meals"] + [f"City{i} | {100 + i} | {20 + i}" for i in range(30)]
    doc = make_doc([("Intro text.", {"page": 1}), ("\n".join(rows), {"kind": "table", "page": 1, "header_rows": 1})])
    chunks = [c for c in chunk_document(doc, words, limit=40, overlap=5) if c.kind == "table"]
    assert len(chunks) > 2
    body_rows = []
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[0] == rows[0], "every table chunk starts with the header row"
        body_rows.extend(lines[1:])
        assert all(line in rows for line in lines)
    assert body_rows == rows[1:], "each body row appears exactly once, in order"
    # Offsets of continuation chunks point at their rows in the document text.
    for c in chunks[1:]:
        assert c.text.endswith(doc.text[c.start : c.end])


def test_headings_are_not_chunks_and_bad_limits_rejected():
    doc = make_doc([("Heading", {"kind": "heading"}), ("Body.", {"heading_path": ("Heading",)})])
    chunks = chunk_document(doc, words, limit=10, overlap=0)
    assert [c.text for c in chunks] == ["Body."]
    with pytest.raises(ValueError):
        chunk_document(doc, words, limit=10, overlap=10)
