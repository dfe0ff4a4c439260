"""Document routing (retrieval/routing.py): questions that name a document (company, year, form)
are searched once more inside it; questions that name none are not routed; routing never reaches
a document the asker cannot read. Real PDFs through the real parser, index and searcher."""

from __future__ import annotations

import json

from retrieval.models import Chunk, Principal
from retrieval.page_evaluation import load_questions
from retrieval.routing import DocumentCard, build_cards, identity_terms, route
from retrieval.search import Searcher
from ui.usecases.page_evaluation import run_page_evaluation

from .conftest import make_settings
from .minipdf import write_pdf

PAGES = ["Our employees and offices are described in this section of the report.",
         "Purchases of property and equipment were 977 million dollars in the year.",
         "Risk factors include competition, regulation and the general economy."]
FILINGS = ("ACME_2019_10K", "ACME_2020_10K", "BETACORP_2019_10K", "BETACORP_2020_10K")


def test_identity_terms_split_years_and_join_names():
    terms = identity_terms("What was Best Buy's FY2018 capex for 3M?")
    assert {"fy2018", "2018", "bestbuy", "best", "buy", "3m"} <= terms
    assert "what" not in terms and "for" not in terms
    assert {"年假", "年"} <= identity_terms("年假有多少天")


def _card(doc: str, name: str, opening: str = "annual report pursuant to section 13") -> DocumentCard:
    return DocumentCard(doc, frozenset(identity_terms(name)), frozenset(identity_terms(opening)))


def test_route_prefers_the_named_filing_and_skips_questions_that_name_none():
    cards = [_card(doc, doc.replace("_", " ")) for doc in FILINGS]
    r = route("What were Acme's FY2020 purchases of property?", cards, top=3, min_score=1.0)
    assert r is not None and r.document_ids == ("ACME_2020_10K",)
    company = route("Where are Acme's offices?", cards, top=3, min_score=1.0)
    assert company is not None and set(company.document_ids) == {"ACME_2019_10K", "ACME_2020_10K"}
    assert route("What were the purchases of property and equipment?", cards, top=3, min_score=1.0) is None
    assert route("anything", [], top=3, min_score=0.0) is None


def test_a_cover_page_names_what_the_file_name_does_not():
    cards = [_card("a", "annual report 2020", "GENERAL MILLS, INC. fiscal year ended May 31, 2020"),
             _card("b", "annual report 2020", "Best Buy Co., Inc. fiscal year ended February 1, 2020")]
    r = route("What is General Mills's FY2020 working capital ratio?", cards, top=3, min_score=0.5)
    assert r is not None and r.document_ids[0] == "a"


def test_one_card_per_document_the_newest_version():
    def chunk(i: int, file_hash: str, at: float, text: str) -> Chunk:
        return Chunk(id=f"{file_hash}{i}", document_id="d", collection="c", path="/x/ACME_2020_10K.pdf", title="t",
                     text=text, chunk_index=i, n_chunks=2, start=0, end=len(text), content_hash="h",
                     file_hash=file_hash, indexed_at=at)

    [card] = build_cards([chunk(0, "old", 1.0, "Oldname Inc"), chunk(0, "new", 2.0, "Newname Inc"),
                          chunk(1, "new", 2.0, "cover")])
    assert "newname" in card.opening and "oldname" not in card.opening and "acme" in card.name


def _write(docs) -> list:
    """Four filings whose pages read the same word for word: only the file name says which
    company and year each is, so without routing every question gets the same ranking."""
    docs.mkdir()
    for doc in FILINGS:
        write_pdf(docs / f"{doc}.pdf", PAGES, title="Annual report")
    path = docs.parent / "questions.jsonl"
    path.write_text("".join(
        json.dumps({"financebench_id": doc, "doc_name": doc, "evidence": [{"evidence_page_num": 1}],
                    "question": f"What were {doc.split('_')[0].title()}'s FY{doc.split('_')[1]} purchases of property "
                                "and equipment?"}) + "\n" for doc in FILINGS))
    return load_questions(path)


def test_routing_finds_the_named_filings_page_where_the_text_cannot(tmp_path, embedder):
    docs = tmp_path / "filings"
    questions = _write(docs)
    run = run_page_evaluation(make_settings(tmp_path / "docent"), docs, questions, ["hybrid", "sparse"],
                              embedder=embedder,
                              variants={"base": {"route_documents": False}, "route": {"route_documents": True}})
    for mode in ("hybrid", "sparse"):
        # Identical text scores identically: one ranking for all four questions, at most one right.
        assert run.results[f"base:{mode}"]["page_hit@1"] <= 0.25, mode
        assert run.results[f"route:{mode}"]["page_hit@1"] == 1.0, mode
        assert all(page == 0 for page, _ in run.ranks[f"route:{mode}"].values())


def test_routing_never_reaches_a_document_the_reader_cannot_see(tmp_path, embedder, caplog):
    from ingest.page_corpus import COLLECTION, ensure_folder_index
    from retrieval.workspace import Workspace

    docs = tmp_path / "filings"
    _write(docs)
    built = ensure_folder_index(make_settings(tmp_path / "docent"), docs, embedder)
    settings = built.settings.model_copy(update={"route_documents": True})
    with Workspace(settings, embedder=embedder) as ws:
        rec = ws.catalog.get(COLLECTION)
        rec = ws.catalog.set_groups(rec.name, read_groups=["finance"])
        secret = next(c.document_id for c in ws.index.store.scroll(ws.index.target(rec)) if "ACME_2020" in c.path)
        ws.index.set_access(rec, secret, ["board"])
        searcher = Searcher(settings, ws.index, embedder)
        reader = Principal(user="fiona", groups=["finance"])
        report = searcher.search("What were Acme's FY2020 purchases of property and equipment?", reader, [COLLECTION])
        assert report.passages and all(p.document_id != secret for p in report.passages)
        # The engine's filter keeps it out, not only the per-chunk re-check behind it.
        assert not [r for r in caplog.records if "access filter let through" in r.getMessage()]
        assert any(s.startswith("route:") for s in report.stages)
        board = Principal(user="bob", groups=["board", "finance"])
        top = searcher.search("What were Acme's FY2020 purchases of property and equipment?", board, [COLLECTION])
        assert top.passages[0].document_id == secret
