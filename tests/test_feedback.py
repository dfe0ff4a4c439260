"""Feedback on answers: stored with question, passages and answer when the audit settings keep
text (only ratings and ids otherwise); exported in the layout `docent eval` loads."""

from __future__ import annotations

import sqlite3

from assistant.answer_models import Answer, Citation
from assistant.feedback import FeedbackStore, passage_key
from retrieval.evaluation import load_beir
from retrieval.models import Passage

SECRET = "Alice earns ninety thousand"


def _passage(doc: str, text: str, start: int = 0) -> Passage:
    return Passage(chunk_ids=[f"{doc}-c{start}"], document_id=doc, collection="c", path=f"/d/{doc}.pdf",
                   title=doc.title(), text=text, start=start, end=start + len(text), page=1, score=1.0)


def _answer(passages: list[Passage], cited: list[int]) -> Answer:
    cits = [Citation(n=n, document_id=passages[n - 1].document_id, title="t", path="p", quote=passages[n - 1].text[:10],
                     start=0, end=10, supported=True) for n in cited]
    return Answer(answer="Answer [1].", mode="generated", citations=cits, passages=passages)


def test_store_update_and_export_as_beir(settings):
    store = FeedbackStore.from_settings(settings.model_copy(update={"audit_include_text": True}))
    p1, p2, p3 = _passage("alpha", "Alpha text about meals."), _passage("beta", "Beta text."), _passage("gamma", "G.")
    up = store.add("alice", "What about meals?", _answer([p1, p2], [1]), "up", "great", ["Handbook"])
    down = store.add("bob", "What about gamma?", _answer([p3, p2], [1, 2]), "up")
    store.update(down, rating="down", comment="wrong document")
    refused = store.add("bob", "Unanswerable?", Answer(answer="No.", mode="refused"), "down")

    records = store.list()
    assert [r.id for r in records] == [refused, down, up]
    first = store.list(rating="up")[0]
    assert first.comment == "great" and first.collections == ["Handbook"]
    assert first.answer.passages[0].text == "Alpha text about meals."
    assert store.list(rating="down")[1].comment == "wrong document"

    summary = store.export_beir(settings.data_dir / "eval")
    assert (summary.queries, summary.corpus, summary.relevant, summary.not_relevant) == (2, 3, 1, 2)
    beir = load_beir(settings.data_dir / "eval")
    # Only the thumbs-up query has a relevant passage; the thumbs-down judgments stay in qrels.
    assert beir.queries == {f"fb-{up}": "What about meals?"}
    assert beir.qrels[f"fb-{up}"] == {passage_key(p1): 1}
    assert beir.qrels[f"fb-{down}"] == {passage_key(p3): 0, passage_key(p2): 0}
    corpus = {r.doc_id: r for r in beir.corpus()}
    assert corpus[passage_key(p1)].text == "Alpha text about meals." and len(corpus) == 3


def test_bad_rating_is_refused(settings):
    import pytest

    store = FeedbackStore.from_settings(settings)
    with pytest.raises(ValueError, match="rating"):
        store.add("a", "q", Answer(answer="x", mode="refused"), "meh")  # type: ignore[arg-type]


def _stored_bytes(store: FeedbackStore) -> bytes:
    return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))


def test_without_audit_text_feedback_keeps_ratings_and_ids_only(settings):
    assert settings.audit_include_text is False  # the default
    store = FeedbackStore.from_settings(settings)
    p = _passage("payroll", f"{SECRET} a year.")
    fid = store.add("bob", "What is Alice's salary?", _answer([p], [1]), "up", "Alice's figure is right", ["HR"])
    store.update(fid, comment="Alice again")
    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Alice" not in _stored_bytes(store) and b"salary" not in _stored_bytes(store)
    [rec] = store.list()
    assert (rec.rating, rec.user, rec.collections, rec.question, rec.comment) == ("up", "bob", ["HR"], "", "")
    assert [c.document_id for c in rec.answer.citations] == ["payroll"]
    assert rec.answer.passages[0].document_id == "payroll" and rec.answer.passages[0].text == ""
    summary = store.export_beir(settings.data_dir / "eval")  # nothing to evaluate without text
    assert (summary.queries, summary.corpus) == (0, 0)


def test_removing_a_document_removes_the_text_of_feedback_that_used_it(tmp_path, embedder):
    from ingest.batch import BatchIngest
    from ingest.indexer import DocumentIndexer
    from ingest.parse import parse_file
    from ui.usecases.core import open_workspace

    from .conftest import make_settings
    from .ops_corpus import write_share

    settings = make_settings(tmp_path / "docent", audit_include_text=True)
    write_share(tmp_path / "share", ["leave-policy", "travel-expenses"])
    # The composition root's workspace: the one every front end uses, with the removal hook.
    with open_workspace(settings, embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        indexer = DocumentIndexer(settings, ws.index, embedder)
        BatchIngest(ws.index, indexer, lambda p: parse_file(p, max_file_mb=10)).run(rec, [tmp_path / "share"])
        leave, travel = ws.index.list_documents(rec)
        store = FeedbackStore.from_settings(settings)
        gone = store.add("bob", "How many leave days?", _answer([_passage(leave.document_id, SECRET)], [1]), "up", "ok")
        kept = store.add("bob", "Hotel costs?", _answer([_passage(travel.document_id, "Hotels 140.")], [1]), "down")
        ws.index.remove_document(rec, leave.document_id)
    assert SECRET.encode() not in _stored_bytes(store)
    by_id = {r.id: r for r in store.list()}
    assert (by_id[gone].question, by_id[gone].comment, by_id[gone].answer.answer) == ("", "", "")
    assert by_id[gone].rating == "up" and by_id[gone].answer.passages[0].text == ""
    assert by_id[kept].question == "Hotel costs?" and by_id[kept].answer.passages[0].text == "Hotels 140."
