"""Page-level evaluation (``docent eval-pages``) and contextual chunk text, on small generated PDFs
through the real parser, chunker, embedder, index and searcher."""

from __future__ import annotations

import json

import pytest

from retrieval.page_evaluation import Hit, PageQuestion, load_questions, score
from ui.usecases.page_evaluation import run_page_evaluation

from .conftest import make_settings
from .minipdf import write_pdf


def _q(doc: str, *pages: int) -> PageQuestion:
    return PageQuestion("q", "?", doc, frozenset(pages))


def test_a_page_hit_needs_the_right_filing_and_a_covered_page():
    q = _q("ACME_2020_10K", 7)
    wrong_filing = Hit("ACME_2019_10K", 7, 7)
    wrong_page = Hit("ACME_2020_10K", 3, 3)
    spanning = Hit("ACME_2020_10K", 6, 8)  # a merged passage over pages 6-8 covers page 7
    m = score({"q": [wrong_filing, wrong_page, spanning]}, [q])
    assert m["page_hit@1"] == 0 and m["page_hit@5"] == 1 and m["mrr@10"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["filing_hit@1"] == 0 and m["filing_hit@5"] == 1
    assert score({"q": [wrong_filing] * 5 + [spanning]}, [q])["page_hit@5"] == 0
    assert score({"q": [Hit("ACME_2020_10K", None, None)]}, [q])["page_hit@10"] == 0


def test_evidence_pages_are_read_as_zero_based(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Capex?", "doc_name": "ACME_2020_10K",
                                "evidence": [{"evidence_page_num": 0}, {"evidence_page_num": 4}]}) + "\n")
    [q] = load_questions(path)
    assert q.pages == frozenset({1, 5})  # Passage.page is 1-based


FILLER = ["Our employees and offices are described in this section of the report.",
          "Risk factors include competition, regulation and the general economy."]


def _filings(root):
    """Two filings of one company whose pages read the same except for one figure: only the file
    name says which year is which (both carry the same metadata title)."""
    for year, capex in (("2019", "410"), ("2020", "977")):
        write_pdf(root / f"ACME_{year}_10K.pdf",
                  [FILLER[0], f"Purchases of property and equipment were {capex} million dollars.", FILLER[1]],
                  title="Annual report")
    questions = root.parent / "questions.jsonl"
    questions.write_text("".join(json.dumps({"financebench_id": year, "doc_name": f"ACME_{year}_10K",
                                             "question": f"What were ACME's {year} purchases of property and equipment?",
                                             "evidence": [{"evidence_page_num": 1}]}) + "\n"
                                 for year in ("2019", "2020")))
    return load_questions(questions)


def test_the_index_is_reused_until_a_file_changes(tmp_path, embedder):
    docs = tmp_path / "filings"
    docs.mkdir()
    questions = _filings(docs)
    settings = make_settings(tmp_path / "docent")
    first = run_page_evaluation(settings, docs, questions, ["hybrid"], embedder=embedder)
    assert (first.documents, first.pages, first.reused) == (2, 6, False)
    assert first.results["hybrid"]["filing_hit@10"] == 1.0
    again = run_page_evaluation(settings, docs, questions, ["hybrid"], embedder=embedder)
    assert again.reused and again.results == {"hybrid": {**again.results["hybrid"]}}
    assert {k: v for k, v in again.results["hybrid"].items() if "ms" not in k} == \
        {k: v for k, v in first.results["hybrid"].items() if "ms" not in k}
    write_pdf(docs / "ACME_2019_10K.pdf", [FILLER[0], "Purchases were 411 million dollars.", FILLER[1]], title="x")
    assert not run_page_evaluation(settings, docs, questions, ["hybrid"], embedder=embedder).reused
    other = make_settings(tmp_path / "docent", contextual_chunks=True)
    assert not run_page_evaluation(other, docs, questions, ["hybrid"], embedder=embedder).reused


def test_contextual_text_tells_neighbouring_filings_apart(tmp_path, embedder):
    docs = tmp_path / "filings"
    docs.mkdir()
    questions = _filings(docs)
    settings = make_settings(tmp_path / "docent", contextual_chunks=True)
    run = run_page_evaluation(settings, docs, questions, ["hybrid", "sparse", "dense"], embedder=embedder)
    for mode in ("hybrid", "sparse", "dense"):
        assert run.results[mode]["page_hit@1"] == 1.0, mode


def test_contextual_text_is_indexed_but_never_shown_or_quoted(tmp_path, workspace):
    from ingest.indexer import DocumentIndexer, SourceFile, chunk_embedding_text
    from ingest.pdf_parser import parse_pdf

    path = write_pdf(tmp_path / "ACME_2020_10K.pdf", FILLER, title="Annual report")
    parsed = parse_pdf(path)
    settings = workspace.settings.model_copy(update={"contextual_chunks": True})
    rec = workspace.ready_collection("c", create=True)
    chunks = DocumentIndexer(settings, workspace.index, workspace.embedder).chunk(rec, SourceFile(str(path), "h"), parsed)
    for c in chunks:
        assert "ACME 2020 10K" in c.context and "Annual report" in c.context
        assert c.text == parsed.text[c.start:c.end]  # citation offsets point at the shown text only
        assert "ACME 2020 10K" not in c.text
        assert chunk_embedding_text(c).startswith(c.context) and chunk_embedding_text(c).endswith(c.text)


def test_a_pdf_passage_knows_its_heading_and_a_table_its_caption():
    from ingest.chunker import chunk_document
    from ingest.parsed import ParsedDocument, TextBuilder

    b = TextBuilder()
    b.add("Consolidated Statements of Cash Flows", "heading", page=4)
    b.add("Amounts in millions of dollars", page=4)
    b.add_table([["Item", "2019"], ["Purchases of property and equipment", "977"]], 1, page=4)
    b.add("Liquidity is discussed below.", page=5)
    doc = ParsedDocument("ACME_2019_10K.pdf", "pdf", "ACME", b.text, b.blocks, 5)
    drafts = chunk_document(doc, lambda t: len(t.split()), 64, 8)
    table = next(d for d in drafts if d.kind == "table")
    assert (table.section, table.caption) == ("Consolidated Statements of Cash Flows", "Amounts in millions of dollars")
    later = [d for d in drafts if d.page == 5]
    assert later and later[0].section == "Consolidated Statements of Cash Flows" and later[0].caption == ""
    assert all(d.text == doc.text[d.start:d.end] for d in drafts if d.kind == "text")
