"""Merging ranked chunks into passages and stitching their text (pure functions, no index)."""

from __future__ import annotations

import hashlib

import pytest

from retrieval.models import Chunk
from retrieval.passages import Ranked, merge_ranked, stitch, to_passage, with_context

DOC = ("Alpha one. Alpha two. Alpha three.\n\nBeta one. Beta two.\n\n"
       "Name | Days\nAnna | 3\nBen | 4\nCid | 5")


def chunk(i: int, start: int, end: int, *, doc: str = "d1", version: str = "v1", page: int | None = None,
          text: str | None = None, kind: str = "text", heading: list[str] | None = None) -> Chunk:
    body = DOC[start:end] if text is None else text
    return Chunk(id=f"{doc}-{version}-{i}", document_id=doc, collection="c1", path=f"/{doc}.pdf", title="T",
                 text=body, chunk_index=i, n_chunks=9, start=start, end=end, page=page,
                 heading_path=heading or [], kind=kind,
                 content_hash=hashlib.sha256(body.encode()).hexdigest(), file_hash=version)


def span(s: str) -> tuple[int, int]:
    i = DOC.index(s)
    return i, i + len(s)


A = chunk(0, *span("Alpha one. Alpha two."), page=1)
B = chunk(1, span("Alpha two.")[0], span("Alpha three.")[1], page=1)  # overlaps A by "Alpha two."
C = chunk(2, *span("Beta one. Beta two."), page=2)
HEADER = "Name | Days"
T1 = chunk(3, span(HEADER)[0], span("Ben | 4")[1], kind="table", page=2)
T2 = chunk(4, *span("Cid | 5"), text=HEADER + "\n" + "Cid | 5", kind="table", page=3)


def test_overlapping_chunks_stitch_without_repeating_the_overlap():
    assert stitch([A, B]) == "Alpha one. Alpha two. Alpha three."
    assert stitch([A, B, C]) == "Alpha one. Alpha two. Alpha three.\n\nBeta one. Beta two."


def test_table_continuation_drops_its_repeated_header_inside_a_passage_but_keeps_it_when_first():
    assert stitch([T1, T2]) == DOC[T1.start:T2.end]
    assert stitch([T2]) == "Name | Days\nCid | 5"


def test_merge_joins_adjacent_chunks_and_keeps_the_best_score_and_rank():
    groups = merge_ranked([Ranked(B, 0.9), Ranked(C, 0.5), Ranked(A, 0.8)], k=5)
    assert len(groups) == 1
    chunks, score = groups[0]
    assert [c.chunk_index for c in chunks] == [0, 1, 2] and score == 0.9
    p = to_passage(chunks, score)
    assert p.text == DOC[A.start:C.end] and (p.start, p.end) == (A.start, C.end)
    assert (p.page, p.page_end) == (1, 2)
    assert p.chunk_ids == [A.id, B.id, C.id]


def test_a_chunk_between_two_groups_bridges_them_into_one():
    groups = merge_ranked([Ranked(A, 0.9), Ranked(C, 0.8), Ranked(B, 0.1)], k=2)
    assert [[c.chunk_index for c in g] for g, _ in groups] == [[0, 1, 2]]


def test_no_merge_across_documents_or_versions():
    other_doc = chunk(1, B.start, B.end, doc="d2")
    other_version = chunk(1, B.start, B.end, version="v2", text=B.text + " changed")
    groups = merge_ranked([Ranked(A, 0.9), Ranked(other_doc, 0.8), Ranked(other_version, 0.7)], k=5)
    assert len(groups) == 3


def test_same_text_of_two_versions_is_returned_once():
    twin = chunk(0, A.start, A.end, version="v2")
    groups = merge_ranked([Ranked(A, 0.9), Ranked(twin, 0.8)], k=5)
    assert [[c.id for c in g] for g, _ in groups] == [[A.id]]


def test_reading_stops_at_the_chunk_that_would_open_group_k_plus_one():
    far = chunk(7, *span("Beta two."), doc="d3")
    groups = merge_ranked([Ranked(A, 0.9), Ranked(far, 0.8), Ranked(B, 0.7)], k=1)
    # B is adjacent to A, but it ranks below a chunk that did not fit: it must not pad A.
    assert [[c.id for c in g] for g, _ in groups] == [[A.id]]
    with pytest.raises(ValueError):
        merge_ranked([], k=0)


def test_heading_path_is_the_common_prefix_and_kind_text_unless_all_tables():
    x = chunk(0, *span("Alpha one."), heading=["H1", "H2"])
    y = chunk(1, *span("Alpha two."), heading=["H1", "H3"])
    p = to_passage([x, y], 1.0)
    assert p.heading_path == ["H1"] and p.kind == "text"
    assert to_passage([T1, T2], 1.0).kind == "table"


def test_context_window_excludes_the_passage_text():
    p = to_passage([B], 1.0)
    q = with_context(p, before=[A], after=[C])
    assert q.context_before == "Alpha one."
    assert q.context_after == "Beta one. Beta two."
    assert q.text == p.text


def test_a_quote_on_a_later_page_of_a_merged_passage_cites_that_page():
    """Citations used to carry the passage's first page even when the quote sat on the next
    (grounding and the extractive answer cite ``page_at`` the quote's offset; the API test sees
    it end to end on a real PDF)."""
    p = to_passage([A, B, C], 1.0)
    assert (p.page, p.page_end) == (1, 2) and p.page_starts == [(A.start, 1), (C.start, 2)]
    assert p.page_at(span("Alpha three.")[0]) == 1 and p.page_at(span("Beta two.")[0]) == 2
    assert to_passage([A, B], 1.0).page_starts == []  # one page: nothing to look up
