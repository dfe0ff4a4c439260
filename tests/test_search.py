"""Search on small real corpora: keyword vs dense vs hybrid, Chinese, merging, context windows,
reports that name their stages, and `docent search` / `docent eval` end to end."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from retrieval.catalog import CatalogError
from retrieval.models import Principal
from retrieval.rerank import Reranker, RerankerUnavailableError
from retrieval.search import Searcher, SearchError
from retrieval.workspace import Workspace
from tests.conftest import make_settings
from tests.search_support import (
    RETRIEVAL_FIXTURES,
    doc_ids,
    fixture_records,
    index_items,
    index_records,
    open_workspace,
    write_jsonl,
)

ADMIN = Principal(user="root", is_admin=True)
MIXED = "Mixed"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, embedder):
    """SciFact excerpts about KRAS/PI3K, CMRC2018 paragraphs (Chinese) and four policy notes."""
    ws = open_workspace(tmp_path_factory.mktemp("mixed"), embedder)
    records = (fixture_records("scifact_kras.jsonl") + fixture_records("cmrc_paragraphs.jsonl")
               + fixture_records("policies.jsonl"))
    index_records(ws, MIXED, records)
    index_records(ws, "Policies", fixture_records("policies.jsonl"))
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def searcher(mixed):
    return Searcher(mixed.settings, mixed.index, mixed.embedder)


def ranks(searcher, question, target, k=10):
    return {mode: (doc_ids(searcher.search(question, ADMIN, [MIXED], mode=mode, k=k)) + [target]).index(target) + 1
            for mode in ("dense", "sparse", "hybrid")}


def test_exact_identifier_is_found_by_keywords_where_dense_search_misses_it(searcher):
    # A drug code: embeddings blur it into "some kinase inhibitor", BM25 matches it exactly.
    r = ranks(searcher, "ARRY-142886", "4961038")
    assert r["sparse"] == 1 and r["hybrid"] == 1
    assert r["dense"] > 3


@pytest.mark.parametrize("question, target", [
    ("伯尔尼条约的名字如何得来？", "DEV_438"),
    ("阿马里洛的原名是什么？", "DEV_1672"),
    ("英雄广场是哪个皇宫的外部广场？", "DEV_1913"),
])
def test_chinese_questions_find_their_paragraph_in_every_mode(searcher, question, target):
    assert ranks(searcher, question, target) == {"dense": 1, "sparse": 1, "hybrid": 1}


@pytest.mark.parametrize("question, target", [
    ("How much vacation can workers take?", "leave"),
    ("What is the minimum length of a login secret?", "security"),
])
def test_paraphrase_is_found_by_dense_search_where_keywords_miss_it(searcher, question, target):
    assert target not in doc_ids(searcher.search(question, ADMIN, [MIXED], mode="sparse", k=10))
    r = ranks(searcher, question, target)
    assert r["dense"] == 1 and r["hybrid"] == 1


def test_a_chinese_question_finds_an_english_document_only_through_dense_search(searcher):
    question = "员工每年有多少天带薪假期？"  # "how many days of paid leave do employees get per year?"
    assert doc_ids(searcher.search(question, ADMIN, [MIXED], mode="dense", k=3))[0] == "leave"
    assert "leave" not in doc_ids(searcher.search(question, ADMIN, [MIXED], mode="sparse", k=10))


def test_passages_carry_provenance_and_exact_offsets(searcher):
    report = searcher.search("阿马里洛的原名是什么？", ADMIN, [MIXED], k=3)
    top = report.passages[0]
    record = next(r for r in fixture_records("cmrc_paragraphs.jsonl") if r.doc_id == "DEV_1672")
    assert top.path == "beir://DEV_1672" and top.title == record.title
    assert record.text[top.start:top.end] == top.text and top.chunk_ids
    assert top.page is None and top.score > 0
    assert report.collections == [MIXED] and report.retrieval_ms > 0


def test_the_report_names_the_stages_and_that_rerank_did_not_run(searcher):
    report = searcher.search("annual leave", ADMIN, [MIXED], mode="hybrid", k=2)
    assert report.mode == "hybrid"
    assert report.stages[0].startswith("hybrid: dense+sparse prefetch")
    assert "rerank: off (no cross-encoder configured)" in report.stages
    with pytest.raises(RerankerUnavailableError, match="DOCENT_RERANKER_PATH"):
        searcher.search("annual leave", ADMIN, [MIXED], mode="hybrid+rerank")
    assert searcher.best_mode == "hybrid"


def test_document_filter_and_several_collections(mixed, searcher):
    leave_id = next(d.document_id for d in mixed.index.list_documents(mixed.catalog.get(MIXED))
                    if d.path == "beir://leave")
    only = searcher.search("security passwords laptops", ADMIN, [MIXED], k=5, document_ids=[leave_id])
    assert doc_ids(only) == ["leave"]
    both = searcher.search("laptop encryption", ADMIN, [MIXED, "Policies"], mode="sparse", k=4)
    assert set(both.collections) == {MIXED, "Policies"}
    assert {p.collection for p in both.passages} == {mixed.catalog.get(MIXED).id, mixed.catalog.get("Policies").id}
    assert doc_ids(both)[:2] == ["security", "security"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"question": "  "}, SearchError, "empty"),
    ({"mode": "bm25"}, SearchError, "unknown search mode"),
    ({"k": 0}, SearchError, "k must be"),
    ({"window": 9}, SearchError, "window must be"),
    ({"collections": []}, SearchError, "at least one collection"),
    ({"collections": ["Nope"]}, CatalogError, "no collection named 'Nope'"),
])
def test_bad_requests_get_specific_errors(searcher, kwargs, error, message):
    args = {"question": "leave", "principal": ADMIN, "collections": [MIXED], **kwargs}
    with pytest.raises(error, match=message):
        searcher.search(**args)


# --- merging and context windows, on a document cut into many small overlapping chunks --------
HANDBOOK = [
    "Onboarding starts on the first Monday of the month.",
    "New staff receive a laptop, a badge and a buddy from their team.",
    "The buddy explains the tools, the rooms and the coffee machine.",
    "During the first week every newcomer meets the works council.",
    "Probation lasts six months and ends with a written review.",
    "The review covers goals, feedback from peers and training needs.",
    "Training budgets are 1,500 euros per person and year.",
    "Unused training budget does not carry over to the next year.",
    "Questions about onboarding go to the people team mailbox.",
]


@pytest.fixture(scope="module")
def handbook(tmp_path_factory, embedder):
    """Settings of a closed index holding one handbook; tests open it (one opener at a time)."""
    from ingest.beir import corpus_items
    from retrieval.evaluation import CorpusRecord

    record = CorpusRecord("handbook", "Employee handbook", " ".join(HANDBOOK))
    with open_workspace(tmp_path_factory.mktemp("handbook"), embedder, chunk_tokens=32,
                        chunk_overlap_tokens=17) as ws:
        index_items(ws, "Handbook", corpus_items([record]))
    return ws.settings, record.text


@pytest.fixture
def handbook_ws(handbook, embedder):
    with Workspace(handbook[0], embedder=embedder) as ws:
        yield ws, handbook[1], ws.catalog.get("Handbook")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_overlapping_chunks_hit_together_come_back_as_one_passage(handbook_ws):
    ws, text, rec = handbook_ws
    chunks = ws.index.document_chunks(rec, ws.index.list_documents(rec)[0].document_id)
    assert len(chunks) >= 4
    # A sentence that sits in the overlap of two chunks: both match, one passage comes back.
    shared = next(s for s in HANDBOOK if sum(s in c.text for c in chunks) == 2)
    report = Searcher(ws.settings, ws.index, ws.embedder).search(shared, ADMIN, ["Handbook"], mode="sparse", k=1)
    (p,) = report.passages
    assert len(p.chunk_ids) >= 2 and "merge: adjacent chunks joined" in report.stages
    assert p.text == text[p.start:p.end]
    assert p.text.count(shared) == 1


def test_window_returns_neighbouring_text_without_repeating_the_passage(handbook_ws):
    ws, text, rec = handbook_ws
    searcher = Searcher(ws.settings, ws.index, ws.embedder)
    report = searcher.search("works council newcomer", ADMIN, ["Handbook"], mode="sparse", k=1, window=1)
    (p,) = report.passages
    assert p.context_before and p.context_after
    assert _norm(p.context_before + " " + p.text + " " + p.context_after) in _norm(text)
    assert not set(p.context_before.split(". ")) & set(p.text.split(". "))
    assert report.stages[-1] == "window: 1 neighbouring chunk(s) each side"


def test_docent_search_prints_ranked_passages_with_provenance(handbook, embedder, capsys, monkeypatch):
    from ui.cli import search_cmds

    monkeypatch.setattr("retrieval.embeddings.Embedder.from_settings", classmethod(lambda cls, s: embedder))

    parser = argparse.ArgumentParser()
    search_cmds.register(parser.add_subparsers())
    args = parser.parse_args(["search", "training budget", "--collection", "Handbook", "--as-user", "ann",
                              "--groups", "staff", "--mode", "sparse", "-k", "2"])
    assert args.func(handbook[0], args) == 0
    out = capsys.readouterr().out
    assert "as ann (staff)" in out and "stages: sparse" in out
    assert "[1]" in out and "Employee handbook" in out and "chars " in out
    assert "Training budgets are 1,500 euros" in out


# --- an optional cross-encoder stage ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A randomly initialised two-layer BERT cross-encoder: no real reranker ships with Docent,
    but the stage's plumbing (ordering by its scores, reporting) must still be tested."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("cross-encoder")
    words = sorted({w for r in fixture_records("policies.jsonl") for w in re.findall(r"[a-z]+", r.text.lower())})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(7)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_rerank_orders_passages_by_cross_encoder_scores_and_says_so(mixed, tiny_cross_encoder):
    reranker = Reranker.load(tiny_cross_encoder)
    searcher = Searcher(mixed.settings.model_copy(update={"rerank_top": 4}), mixed.index, mixed.embedder, reranker)
    question = "laptop passwords"
    report = searcher.search(question, ADMIN, ["Policies"], mode="hybrid+rerank", k=4)
    assert report.mode == "hybrid+rerank" and searcher.best_mode == "hybrid+rerank"
    assert f"rerank: cross-encoder {tiny_cross_encoder.name} on top 4" in report.stages
    expected = reranker.score(question, [f"{p.title}\n{p.text}" for p in report.passages])
    assert [p.score for p in report.passages] == pytest.approx(expected)
    assert expected == sorted(expected, reverse=True)


def test_a_configured_reranker_path_that_is_not_a_model_is_an_error(tmp_path):
    with pytest.raises(RerankerUnavailableError, match="not a cross-encoder folder"):
        Reranker.load(tmp_path)


# --- `docent eval` end to end -----------------------------------------------------------------
def test_docent_eval_prints_metrics_per_mode_and_reuses_its_index(tmp_path, embedder, capsys, monkeypatch):
    from ui.cli import eval_cmds

    beir = tmp_path / "beir"
    rows = [json.loads(line) for line in (RETRIEVAL_FIXTURES / "policies.jsonl").read_text().splitlines()]
    write_jsonl(beir / "corpus.jsonl", rows)
    write_jsonl(beir / "queries.jsonl", [
        {"_id": "q1", "text": "How much vacation can workers take?"},
        {"_id": "q2", "text": "meal allowance on business trips"},
        {"_id": "q3", "text": "disk encryption for laptops"},
    ])
    (beir / "qrels").mkdir()
    (beir / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\tleave\t1\r\nq2\ttravel\t1\r\n"
                                              b"q3\tsecurity\t1\r\n")
    monkeypatch.setattr("retrieval.embeddings.Embedder.from_settings", classmethod(lambda cls, s: embedder))
    settings = make_settings(tmp_path / "data", qdrant_url=None, qdrant_embedded_engine="edge")
    parser = argparse.ArgumentParser()
    eval_cmds.register(parser.add_subparsers())

    args = parser.parse_args(["eval", str(beir), "--json"])
    assert args.func(settings, args) == 0
    first = capsys.readouterr()
    result = json.loads(first.out)
    assert list(result) == ["dense", "sparse", "hybrid"]
    for metrics in result.values():
        assert set(metrics) == {"ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"}
        assert 0 <= metrics["ndcg@10"] <= 1
    assert result["dense"]["mrr@10"] == 1.0 and result["hybrid"]["recall@100"] == 1.0
    # The vacation question shares no word with the leave policy: keywords alone cannot find it.
    assert result["sparse"]["recall@100"] == pytest.approx(2 / 3, abs=1e-3)
    assert "indexed in" in first.err and "hybrid+rerank: not run" in first.err

    args = parser.parse_args(["eval", str(beir), "--modes", "sparse"])
    assert args.func(settings, args) == 0
    second = capsys.readouterr().out
    assert "reused index" in second and re.search(r"^sparse\s", second, re.M)
