"""Retrieval metrics and the BEIR loader (pure; the end-to-end `docent eval` run is in test_search.py)."""

from __future__ import annotations

import json
import math

import pytest

from retrieval.evaluation import (
    BeirFormatError,
    evaluate,
    load_beir,
    load_qrels,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
    score_rankings,
)


def test_ndcg_matches_a_hand_computed_value():
    rels = {"a": 1, "b": 1}
    # relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "y", "b"], rels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], rels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y", "a"], rels, 2) == 0.0


def test_graded_relevance_uses_linear_gains():
    rels = {"a": 2, "b": 1}
    assert ndcg_at_k(["b", "a"], rels, 10) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_and_mrr_cut_at_k():
    rels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["c", "a", "x", "b"], rels, 2) == 0.5
    assert recall_at_k(["c", "a", "x", "b"], rels, 4) == 1.0
    assert mrr_at_k(["c", "x", "b"], rels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x", "b"], rels, 2) == 0.0


def test_a_document_named_twice_counts_once_at_its_best_rank():
    qrels = {"q": {"a": 1, "b": 1}}
    m = score_rankings({"q": ["a", "a", "b"]}, qrels)
    assert m["ndcg@10"] == pytest.approx(1.0) and m["recall@5"] == 1.0


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 95) == 10.0
    assert percentile(list(range(101)), 95) == 95


def _write_beir(root, qrels_text: str) -> None:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\n")
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": f"query {q}"}) for q in ("q1", "q2", "q3")) + "\n")
    (root / "qrels" / "test.tsv").write_bytes(qrels_text.encode())


def test_qrels_with_header_and_crlf(tmp_path):
    _write_beir(tmp_path, "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td1\t0\r\n")
    assert load_qrels(tmp_path / "qrels" / "test.tsv") == {"q1": {"d1": 1}, "q2": {"d1": 0}}
    beir = load_beir(tmp_path)
    # q2 has no relevant document and q3 no judgement: neither is evaluated.
    assert beir.queries == {"q1": "query q1"}
    assert [r.doc_id for r in beir.corpus()] == ["d1"]


@pytest.mark.parametrize("qrels, message", [
    ("q1\td1\n", "3 tab-separated columns"),
    ("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", "not a number"),
    ("q9\td1\t1\n", "not in queries.jsonl"),
])
def test_malformed_sets_name_the_problem(tmp_path, qrels, message):
    _write_beir(tmp_path, qrels)
    with pytest.raises(BeirFormatError, match=message):
        load_beir(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BeirFormatError, match="not a folder"):
        load_beir(tmp_path / "nope")


def test_evaluate_reports_every_metric_per_mode_and_rejects_unknown_modes():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    queries = {"q1": "first", "q2": "second"}

    def rank(text: str, mode: str):
        return (["a", "b"] if mode == "dense" else ["b", "a"]), [mode]

    out = evaluate(rank, queries, qrels, ["dense", "sparse"])
    assert list(out) == ["dense", "sparse"]
    assert out["dense"]["mrr@10"] == pytest.approx(0.75) and out["sparse"]["mrr@10"] == pytest.approx(0.75)
    assert out["dense"]["recall@5"] == 1.0
    assert set(out["dense"]) == {"ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"}
    assert out["dense"]["p95_ms"] >= out["dense"]["p50_ms"] >= 0
    with pytest.raises(ValueError, match="unknown mode"):
        evaluate(rank, queries, qrels, ["bm42"])
