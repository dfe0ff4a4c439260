"""Feedback on answers: stored with question, passages and answer; exported in the layout
`docent eval` loads."""

from __future__ import annotations

from assistant.answer_models import Answer, Citation
from assistant.feedback import FeedbackStore, passage_key
from retrieval.evaluation import load_beir
from retrieval.models import Passage


def _passage(doc: str, text: str, start: int = 0) -> Passage:
    return Passage(chunk_ids=[f"{doc}-c{start}"], document_id=doc, collection="c", path=f"/d/{doc}.pdf",
                   title=doc.title(), text=text, start=start, end=start + len(text), page=1, score=1.0)


def _answer(passages: list[Passage], cited: list[int]) -> Answer:
    cits = [Citation(n=n, document_id=passages[n - 1].document_id, title="t", path="p", quote=passages[n - 1].text[:10],
                     start=0, end=10, supported=True) for n in cited]
    return Answer(answer="Answer [1].", mode="generated", citations=cits, passages=passages)


def test_store_update_and_export_as_beir(settings):
    store = FeedbackStore.from_settings(settings)
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
