"""Keyword vectors: stable, stemmed English, n-gram Chinese, BM25 saturation."""

from __future__ import annotations

import subprocess
import sys

from retrieval.sparse import encode_document, encode_query, term_index, tokenize


def test_english_is_stemmed_and_stopwords_dropped():
    assert tokenize("The refunds were REFUNDED quickly") == ["refund", "refund", "quick"]


def test_chinese_gets_unigrams_and_bigrams():
    terms = tokenize("年假制度")
    assert set(terms) == {"年", "假", "制", "度", "年假", "假制", "制度"}
    # Full-width forms fold to ASCII (NFKC), common in CJK documents.
    assert tokenize("ＡＰＩ２０２５") == ["api2025"]


def test_mixed_text_keeps_both_scripts():
    terms = tokenize("Docent 支持中文")
    assert "docent" in terms and "中文" in terms


def test_indices_are_stable_across_processes():
    out = subprocess.run([sys.executable, "-c", "from retrieval.sparse import term_index; print(term_index('年假'))"],
                         capture_output=True, text=True, check=True)
    assert int(out.stdout) == term_index("年假")


def test_document_weights_saturate_and_shrink_with_length():
    short = encode_document("refund policy")
    repeated = encode_document("refund " * 10 + "policy")
    long_doc = encode_document("refund policy " + "filler words here " * 100)
    idx = term_index("refund")

    def w(v):
        return dict(zip(v.indices, v.values))[idx]

    assert w(repeated) > w(short)
    assert w(repeated) < 10 * w(short), "term frequency saturates"
    assert w(long_doc) < w(short), "longer documents weigh each term less"


def test_query_terms_count_once_and_empty_text_is_empty():
    q = encode_query("refund refund policy")
    assert sorted(q.values) == [1.0, 1.0]
    assert encode_document("   ").indices == ()
