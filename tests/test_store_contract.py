"""One contract for every index back-end: edge (Rust engine in-process) and qdrant-client local mode.

Real engines on temporary folders, small synthetic vectors (dim 8, tests/store_corpus.py) so
the suite stays fast. A Qdrant server cannot be installed here; client.py talks to one through
the same qdrant-client calls that local mode answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from retrieval.models import document_id_for
from retrieval.store.base import CollectionNotFoundError, Filter, HybridWeights, Match, SparseVec
from retrieval.store.factory import open_store
from tests.store_corpus import (
    BACKENDS,
    CHUNKS,
    COLL,
    COMMON_TERM,
    DENSE,
    DIM,
    DOCS,
    IDS,
    REPO,
    SPARSE,
    by_doc,
    cosine,
    dense_order,
    doc_term,
    docs_of,
    embedded_settings,
    ids_of,
    open_backend,
    unique_term,
)


@pytest.fixture(params=BACKENDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def store(kind, tmp_path):
    s = open_backend(kind, tmp_path)
    yield s
    s.close()


@pytest.fixture
def loaded(store):
    """A fresh, filled collection for tests that change it."""
    store.ensure_collection(COLL, DIM)
    store.upsert(COLL, CHUNKS, DENSE, SPARSE)
    return store


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request, tmp_path_factory):
    """One filled collection per back-end for the read-only tests (creating an edge collection
    with its payload indexes takes about a second)."""
    s = open_backend(request.param, tmp_path_factory.mktemp(request.param))
    s.ensure_collection(COLL, DIM)
    s.upsert(COLL, CHUNKS, DENSE, SPARSE)
    yield s
    s.close()


# --- collections ------------------------------------------------------------------------
def test_create_list_drop(store):
    assert store.list_collections() == []
    store.ensure_collection(COLL, DIM)
    store.ensure_collection(COLL, DIM)  # idempotent
    store.ensure_collection("other", 4)
    assert store.list_collections() == ["docent_test_v1", "other"]
    assert store.stats(COLL).dim == DIM and store.stats(COLL).points == 0
    with pytest.raises(ValueError, match="dim"):
        store.ensure_collection(COLL, DIM + 1)
    store.drop_collection("other")
    store.drop_collection("other")  # dropping a missing collection is a no-op
    assert store.list_collections() == [COLL]
    with pytest.raises(CollectionNotFoundError):
        store.stats("other")
    with pytest.raises(CollectionNotFoundError):
        store.count("other")


def test_upsert_retrieve_round_trip(loaded):
    assert loaded.stats(COLL).points == len(CHUNKS)
    wanted = [IDS[5], IDS[0], IDS[9], "00000000-0000-0000-0000-000000000000"]
    got = loaded.retrieve(COLL, wanted)
    assert [c.id for c in got] == wanted[:3]  # requested order, missing id skipped
    assert got == [CHUNKS[5], CHUNKS[0], CHUNKS[9]]  # every field, bools and lists included
    assert got[1].access_groups is None and got[0].access_groups == ["hr"]
    # [] (override granting nobody) must stay distinct from None (collection's groups apply)
    nobody = CHUNKS[1].model_copy(update={"access_groups": []})
    loaded.upsert(COLL, [nobody], np.array([DENSE[1]], dtype=np.float32), [SPARSE[1]])  # embedders return numpy
    assert loaded.retrieve(COLL, [nobody.id])[0].access_groups == []
    assert loaded.stats(COLL).points == len(CHUNKS)  # same id: replaced, not added


def test_upsert_rejects_mismatched_lengths(shared):
    with pytest.raises(ValueError, match="chunks"):
        shared.upsert(COLL, CHUNKS[:2], DENSE[:1], SPARSE[:2])


# --- filters ------------------------------------------------------------------------------
def test_count_and_scroll_with_filters(shared):
    assert shared.count(COLL) == 12
    assert shared.count(COLL, Filter(must=(by_doc("beta"),))) == 4
    docs = (document_id_for("handbook", "alpha.pdf"), document_id_for("handbook", "gamma.pdf"))
    assert shared.count(COLL, Filter(must=(Match("document_id", docs),))) == 8
    assert shared.count(COLL, Filter(must=(Match("access_groups", ("legal", "finance")),))) == 4
    assert shared.count(COLL, Filter(must=(Match("chunk_index", (0, 3)),))) == 6
    assert shared.count(COLL, Filter(must=(Match("disabled", (True,)),))) == 1
    assert shared.count(COLL, Filter(must=(Match("has_override", (False,)),))) == 4
    assert shared.count(COLL, Filter(must=(Match("has_override", (True, False)),))) == 12
    assert shared.count(COLL, Filter(must=(Match("access_groups", ()),))) == 0  # any of nothing
    assert shared.count(COLL, Filter()) == 12
    # nested: (alpha OR chunk 0) AND NOT disabled AND NOT chunk 1
    nested = Filter(
        must=(Filter(should=(by_doc("alpha"), Match("chunk_index", (0,)))),),
        must_not=(Match("disabled", (True,)), Match("chunk_index", (1,))),
    )
    expected = {
        c.id for c in CHUNKS if (c.path == "alpha.pdf" or c.chunk_index == 0) and not c.disabled and c.chunk_index != 1
    }
    assert shared.count(COLL, nested) == len(expected) == 5
    # scroll pages through everything (batch smaller than the result) without repeats
    assert set(ids_of(shared.scroll(COLL, nested, batch=2))) == expected
    all_ids = ids_of(shared.scroll(COLL, batch=5))
    assert sorted(all_ids) == sorted(IDS)


def test_access_filter_shape(shared):
    """The shape retrieval/access.py builds: no override, or override granting one of my groups;
    never disabled."""
    readable = Filter(
        should=(
            Filter(must_not=(Match("has_override", (True,)),)),
            Filter(must=(Match("has_override", (True,)), Match("access_groups", ("legal",)))),
        )
    )
    flt = Filter(must=(readable,), must_not=(Match("disabled", (True,)),))
    got = set(ids_of(shared.scroll(COLL, flt)))
    assert docs_of(got) == {"alpha", "gamma"}
    assert got == {c.id for c in CHUNKS if c.path in ("alpha.pdf", "gamma.pdf") and not c.disabled}


def test_delete_by_filter(loaded):
    loaded.delete(COLL, Filter(must=(by_doc("beta"),), must_not=(Match("chunk_index", (0,)),)))
    assert loaded.count(COLL) == 9
    assert ids_of(loaded.scroll(COLL, Filter(must=(by_doc("beta"),)))) == [CHUNKS[4].id]
    assert loaded.retrieve(COLL, [CHUNKS[5].id]) == []


def test_set_payload_by_filter(loaded):
    flt = Filter(must=(by_doc("alpha"),))
    loaded.set_payload(COLL, flt, {"disabled": True})
    assert loaded.count(COLL, Filter(must=(Match("disabled", (True,)),))) == 5
    loaded.set_payload(COLL, flt, {"access_groups": ["finance"], "has_override": True})
    got = loaded.retrieve(COLL, [CHUNKS[0].id])[0]
    assert got.access_groups == ["finance"] and got.disabled is True
    assert got.text == CHUNKS[0].text  # other fields untouched
    assert loaded.count(COLL, Filter(must=(Match("access_groups", ("finance",)),))) == 4
    assert loaded.count(COLL, Filter(must=(Match("has_override", (False,)),))) == 0


# --- queries ------------------------------------------------------------------------------
def test_dense_query_ordering(shared):
    q = [x + 0.01 for x in DENSE[6]]
    got = shared.query(COLL, mode="dense", dense=q, sparse=None, flt=None, limit=5)
    assert ids_of(c.chunk for c in got) == dense_order(q)[:5]
    assert got[0].chunk == CHUNKS[6]
    assert got[0].score == pytest.approx(cosine(q, DENSE[6]), abs=1e-5)
    scores = [c.score for c in got]
    assert scores == sorted(scores, reverse=True)


def test_dense_query_respects_filter(shared):
    flt = Filter(must=(by_doc("gamma"),), must_not=(Match("disabled", (True,)),))
    allowed = {c.id for c in CHUNKS if c.path == "gamma.pdf" and not c.disabled}
    got = shared.query(COLL, mode="dense", dense=DENSE[0], sparse=None, flt=flt, limit=10)
    assert ids_of(c.chunk for c in got) == dense_order(DENSE[0], allowed)


def test_sparse_query_term_only_one_doc_has(shared):
    q = SparseVec((COMMON_TERM, unique_term(7)), (1.0, 1.0))
    got = shared.query(COLL, mode="sparse", dense=None, sparse=q, flt=None, limit=12)
    assert got[0].chunk.id == IDS[7]
    assert len(got) == 12  # the common term matches every chunk, with a lower score
    assert got[0].score > got[1].score
    empty = shared.query(COLL, mode="sparse", dense=None, sparse=SparseVec((), ()), flt=None, limit=5)
    assert empty == []


def test_sparse_idf_down_weights_common_terms(shared):
    # Without IDF the common term's larger value would win; with IDF (term in 12 of 12 points,
    # idf ~ 0.04) the rarer doc term decides.
    q = SparseVec((COMMON_TERM, doc_term(1)), (5.0, 1.0))
    got = shared.query(COLL, mode="sparse", dense=None, sparse=q, flt=None, limit=4)
    assert docs_of(ids_of(c.chunk for c in got)) == {"beta"}


def test_hybrid_fuses_and_filters(shared):
    dense_q, sparse_q = DENSE[2], SparseVec((unique_term(9),), (1.0,))
    got = shared.query(COLL, mode="hybrid", dense=dense_q, sparse=sparse_q, flt=None, limit=12)
    top2 = set(ids_of(c.chunk for c in got[:2]))
    assert top2 == {IDS[2], IDS[9]}  # each side's best, fused
    flt = Filter(must_not=(by_doc("gamma"),))
    got = shared.query(COLL, mode="hybrid", dense=dense_q, sparse=sparse_q, flt=flt, limit=12)
    assert "gamma" not in docs_of(ids_of(c.chunk for c in got))
    assert len(got) == 8 and got[0].chunk.id == IDS[2]
    # The filter applies inside each prefetch, not after the cut: a document with no chunk in
    # either side's unfiltered top 2 is still found by a filtered query with prefetch=2.
    top2 = set(dense_order(dense_q)[:2]) | {IDS[9]}  # the sparse term is only in chunk 9
    doc = next(d for d in DOCS if not {c.id for c in CHUNKS if c.path == f"{d}.pdf"} & top2)
    mine = {c.id for c in CHUNKS if c.path == f"{doc}.pdf"}
    got = shared.query(
        COLL, mode="hybrid", dense=dense_q, sparse=sparse_q, flt=Filter(must=(by_doc(doc),)), limit=5,
        weights=HybridWeights(prefetch=2),
    )
    assert [c.chunk.id for c in got] == dense_order(dense_q, mine)[:2]


def test_hybrid_weights_shift_the_ranking(shared):
    dense_q = DENSE[4]
    sparse_q = SparseVec((doc_term(2), COMMON_TERM), (1.0, 1.0))
    dense_ids = ids_of(c.chunk for c in shared.query(COLL, mode="dense", dense=dense_q, sparse=None, flt=None, limit=12))
    sparse_ids = ids_of(c.chunk for c in shared.query(COLL, mode="sparse", dense=None, sparse=sparse_q, flt=None, limit=12))
    assert dense_ids[:3] != sparse_ids[:3]

    def hybrid(w: HybridWeights) -> list[str]:
        hits = shared.query(COLL, mode="hybrid", dense=dense_q, sparse=sparse_q, flt=None, limit=12, weights=w)
        return ids_of(c.chunk for c in hits)

    # A tiny weight on one side leaves the other side's order intact (weighted RRF divides the rank).
    assert hybrid(HybridWeights(dense=1.0, sparse=0.001))[:5] == dense_ids[:5]
    assert hybrid(HybridWeights(dense=0.001, sparse=1.0))[:5] == sparse_ids[:5]
    # prefetch bounds each side
    assert len(hybrid(HybridWeights(prefetch=2))) <= 4


def test_query_rejects_missing_vectors(shared):
    with pytest.raises(ValueError, match="sparse"):
        shared.query(COLL, mode="hybrid", dense=DENSE[0], sparse=None, flt=None, limit=3)
    with pytest.raises(ValueError, match="mode"):
        shared.query(COLL, mode="fuzzy", dense=DENSE[0], sparse=None, flt=None, limit=3)  # type: ignore[arg-type]


# --- aliases and persistence -----------------------------------------------------------------
def test_alias_set_switch_resolve(loaded):
    loaded.ensure_collection("docent_test_v2", DIM)
    assert loaded.resolve_alias("docent_test") is None
    loaded.set_alias("docent_test", COLL)
    assert loaded.resolve_alias("docent_test") == COLL
    assert loaded.count("docent_test") == 12  # operations accept the alias
    loaded.set_alias("docent_test", "docent_test_v2")  # switch
    assert loaded.resolve_alias("docent_test") == "docent_test_v2"
    assert loaded.count("docent_test") == 0
    assert "docent_test" not in loaded.list_collections()
    with pytest.raises(CollectionNotFoundError):
        loaded.set_alias("docent_test", "missing")
    assert loaded.resolve_alias("docent_test") == "docent_test_v2"  # a failed switch changes nothing
    with pytest.raises(ValueError, match="shadow"):
        loaded.set_alias(COLL, "docent_test_v2")
    loaded.drop_collection("docent_test_v2")
    assert loaded.resolve_alias("docent_test") is None  # aliases go with their collection


def test_persistence_across_close_and_reopen(kind, tmp_path):
    s = open_backend(kind, tmp_path)
    s.ensure_collection(COLL, DIM)
    s.upsert(COLL, CHUNKS, DENSE, SPARSE)
    s.delete(COLL, Filter(must=(by_doc("beta"),)))
    s.set_payload(COLL, Filter(must=(by_doc("alpha"),)), {"disabled": True})
    s.set_alias("docent_test", COLL)
    s.close()
    s = open_backend(kind, tmp_path)
    try:
        assert s.list_collections() == [COLL]
        assert s.resolve_alias("docent_test") == COLL
        assert s.stats(COLL) == s.stats(COLL).__class__(name=COLL, points=8, dim=DIM)
        assert s.count(COLL, Filter(must=(Match("disabled", (True,)),))) == 5
        assert s.retrieve(COLL, [IDS[8]]) == [CHUNKS[8]]
        got = s.query(COLL, mode="sparse", dense=None, sparse=SparseVec((unique_term(10),), (1.0,)), flt=None, limit=1)
        assert got[0].chunk.id == IDS[10]
    finally:
        s.close()


def test_backends_return_the_same_results(tmp_path):
    stores = {k: open_backend(k, tmp_path) for k in BACKENDS}
    try:
        for s in stores.values():
            s.ensure_collection(COLL, DIM)
            s.upsert(COLL, CHUNKS, DENSE, SPARSE)
        flt = Filter(must_not=(Match("disabled", (True,)),))
        sparse_q = SparseVec((COMMON_TERM, doc_term(0), unique_term(3)), (1.0, 0.7, 0.4))
        queries = [
            dict(mode="dense", dense=DENSE[1], sparse=None, flt=None),
            dict(mode="sparse", dense=None, sparse=sparse_q, flt=flt),
            dict(mode="hybrid", dense=DENSE[1], sparse=sparse_q, flt=flt),
            dict(mode="hybrid", dense=DENSE[1], sparse=sparse_q, flt=None, weights=HybridWeights(0.5, 2.0, 5)),
        ]
        for q in queries:
            results = {k: s.query(COLL, limit=6, **q) for k, s in stores.items()}
            edge, local = results["edge"], results["local"]
            assert ids_of(c.chunk for c in edge) == ids_of(c.chunk for c in local), q["mode"]
            assert [c.score for c in edge] == pytest.approx([c.score for c in local], rel=1e-4), q["mode"]
    finally:
        for s in stores.values():
            s.close()


# --- locking ------------------------------------------------------------------------------
_TRY_OPEN = textwrap.dedent(
    """
    import sys
    from retrieval.settings import Settings
    from retrieval.store import IndexBusyError, open_store
    try:
        store = open_store(Settings(_env_file=None, data_dir=sys.argv[1], qdrant_url=None, qdrant_embedded_engine=sys.argv[2]))
    except IndexBusyError as exc:
        print(exc)
        sys.exit(3)
    store.close()
    print("opened")
    """
)


def try_open_in_other_process(data_dir: Path, engine: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOCENT_QDRANT_URL": ""}
    return subprocess.run(
        [sys.executable, "-c", _TRY_OPEN, str(data_dir), engine],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_second_process_gets_index_busy_naming_the_holder(engine, tmp_path):
    store = open_store(embedded_settings(tmp_path, engine))
    try:
        store.ensure_collection(COLL, DIM)
        busy = try_open_in_other_process(tmp_path, engine)
        assert busy.returncode == 3, busy.stderr
        assert f"is held by pid {os.getpid()}" in busy.stdout
        assert "index busy" in busy.stdout and "since" in busy.stdout
        # the holder still works after the refused attempt
        store.upsert(COLL, CHUNKS[:2], DENSE[:2], SPARSE[:2])
        assert store.count(COLL) == 2
    finally:
        store.close()
    freed = try_open_in_other_process(tmp_path, engine)
    assert freed.returncode == 0 and "opened" in freed.stdout, freed.stderr
