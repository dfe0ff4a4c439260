"""Question sets for ``docent eval-answers``: their documents, indexed by the real ingestion code.

A set is a folder with ``set.json`` and ``questions.jsonl`` (see ``assistant.answer_eval``).
``set.json`` says where the documents come from:

- ``{"kind": "files", "documents": [paths], "withheld": [paths]}``: files parsed like uploads
  (paths relative to the set folder). ``withheld`` files hold the gold passages of the
  unanswerable questions and are deliberately *not* indexed;
- ``{"kind": "beir", "source": folder, "queries": 40, "unanswerable": 8, "distractors": 200,
  "seed": 12}``: a BEIR folder whose queries carry ``answers`` (CMRC2018). Questions and
  paragraphs are sampled at run time (the data set is not copied into the repository): one
  query per sampled article, the articles of the unanswerable queries left out of the index,
  plus distractor paragraphs. ``split`` is fixed by a hash of the query id.

The index is kept under ``<data_dir>/eval/answers-<set>-<key>`` and reused while documents,
embedding model, chunking and index code are unchanged, like ``docent eval``'s.

It lives in the application layer because it joins ingestion (the index) and the assistant's
scoring; ``evaluate_answers`` runs a set through ``Docent.ask``, the path ``docent ask`` takes.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from assistant import answer_eval
from assistant.answer_eval import QuestionFileError, QuestionItem, QuestionResult, load_questions, parse_item
from assistant.answer_models import Answer, final_answer
from ingest.beir import CachedEmbedder, EmbeddingCache, build_key, to_parsed
from ingest.indexer import DocumentIndexer, PassageEmbedder, SourceFile
from ingest.parse import parse_file
from ingest.parsed import ParsedDocument
from retrieval.evaluation import load_corpus, load_qrels
from retrieval.models import Principal
from retrieval.settings import Settings
from retrieval.workspace import Workspace

COLLECTION = "answers"
_COMPLETE = "complete.json"


@dataclass
class AnswerSet:
    name: str
    root: Path
    items: list[QuestionItem]
    documents: list[tuple[SourceFile, ParsedDocument]]


def load_set(root: Path, source: Path | None = None, max_file_mb: int = 50) -> AnswerSet:
    """The set in ``root``; ``source`` overrides a beir set's data folder."""
    root = Path(root)
    spec_path = root / "set.json"
    if not spec_path.is_file():
        raise QuestionFileError(f"{spec_path}: file not found (a question set needs set.json)")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    name = str(spec.get("name") or root.name)
    if spec.get("kind") == "files":
        items = load_questions(root / "questions.jsonl")
        docs = []
        for rel in spec.get("documents") or []:
            path = (root / rel).resolve()
            parsed = parse_file(path, max_file_mb)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            docs.append((SourceFile(str(path), digest, path.stat().st_size), parsed))
        return AnswerSet(name, root, items, docs)
    if spec.get("kind") == "beir":
        return _beir_set(name, root, spec, source)
    raise QuestionFileError(f"{spec_path}: kind must be 'files' or 'beir'")


def _split(qid: str) -> str:
    return "tune" if int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0 else "check"


def _beir_set(name: str, root: Path, spec: dict, source: Path | None) -> AnswerSet:
    folder = Path(source or spec["source"])
    if not (folder / "queries.jsonl").is_file():
        raise QuestionFileError(f"{folder}: no queries.jsonl (set the data folder with --source)")
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    answers: dict[str, tuple[str, list[str]]] = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            answers[str(obj["_id"])] = (obj["text"], [str(a) for a in obj.get("answers") or []])
    by_doc: dict[str, list[str]] = {}
    for qid, judged in sorted(qrels.items()):
        docs = [d for d, v in judged.items() if v > 0]
        if len(docs) == 1 and qid in answers and answers[qid][1]:
            by_doc.setdefault(docs[0], []).append(qid)
    corpus = {r.doc_id: r for r in load_corpus(folder / "corpus.jsonl")}
    rng = random.Random(int(spec.get("seed", 12)))
    articles = sorted(d for d in by_doc if d in corpus)
    rng.shuffle(articles)
    n_ans, n_una = int(spec.get("queries", 40)), int(spec.get("unanswerable", 8))
    asked, withheld = articles[:n_ans], articles[n_ans:n_ans + n_una]
    items = []
    for doc, answerable in [(d, True) for d in asked] + [(d, False) for d in withheld]:
        qid = rng.choice(by_doc[doc])
        text, golds = answers[qid]
        note = f"gold paragraph {doc}" + ("" if answerable else " withheld from the index")
        items.append(parse_item({"id": qid, "question": text, "answers": golds, "answerable": answerable,
                                 "split": _split(qid), "note": note}, f"{folder}:{qid}"))
    skip = set(withheld)
    distractors = [d for d in sorted(corpus) if d not in skip and d not in asked]
    rng.shuffle(distractors)
    keep = asked + distractors[: int(spec.get("distractors", 200))]
    docs = [pair for d in keep if (pair := to_parsed(corpus[d])) is not None]
    return AnswerSet(name, root, items, docs)


def _key(settings: Settings, aset: AnswerSet, model_id: str) -> str:
    return build_key(settings, sorted(s.file_hash for s, _ in aset.documents), model_id)


def ensure_set_index(settings: Settings, aset: AnswerSet, embedder: PassageEmbedder,
                     rebuild: bool = False) -> tuple[Settings, bool]:
    """Settings whose data_dir holds ``aset``'s index (collection :data:`COLLECTION`), and
    whether an existing index was reused."""
    key = _key(settings, aset, embedder.model_id)
    es = settings.model_copy(update={
        "data_dir": settings.data_dir / "eval" / f"answers-{aset.name}-{key[:16]}",
        "collection_prefix": f"{settings.collection_prefix}evalans_",
    })
    marker = es.data_dir / _COMPLETE
    if marker.is_file() and not rebuild and json.loads(marker.read_text()).get("key") == key:
        return es, True
    if es.data_dir.exists():
        shutil.rmtree(es.data_dir)
    cache = EmbeddingCache(settings.data_dir / "eval" / "embeddings.sqlite3", embedder.model_id)
    try:
        cached = CachedEmbedder(embedder, cache)
        with Workspace(es) as ws:
            if (old := ws.catalog.find(COLLECTION)) is not None:  # a shared server may hold a stale one
                ws.index.drop(old)
                ws.catalog.delete_collection(COLLECTION)
            rec = ws.index.ensure(ws.catalog.create_collection(COLLECTION), cached.model_id, cached.dim)
            done = sum(1 for _ in DocumentIndexer(es, ws.index, cached, batch_chunks=256).index_all(rec, aset.documents))
    finally:
        cache.close()
    marker.write_text(json.dumps({"key": key, "documents": done}), encoding="utf-8")
    return es, False


EVAL_PRINCIPAL = Principal(user="docent-eval", is_admin=True)


def evaluate_answers(settings: Settings, aset: AnswerSet, items: list[QuestionItem], *, k: int,
                     max_tokens: int | None, rebuild: bool,
                     progress: Callable[[int, int, QuestionResult], None] | None = None,
                     started: Callable[[AnswerSet, bool, object], None] | None = None) -> dict:
    """Index the set (or reuse its index), ask every item through ``Docent.ask`` and score it."""
    from retrieval.embeddings import Embedder
    from ui.usecases import Docent

    embedder = Embedder.from_settings(settings)
    es, reused = ensure_set_index(settings, aset, embedder, rebuild=rebuild)
    # Many questions in a row from one user: the rate limit would refuse them, not the answer path.
    es = es.model_copy(update={"questions_per_minute": 0})
    with Docent.from_settings(es, embedder=embedder) as app:
        choice = app.llm
        if started:
            started(aset, reused, choice)

        def ask(question: str) -> Answer:
            return final_answer(app.ask(EVAL_PRINCIPAL, [COLLECTION], question, k=k, max_tokens=max_tokens))

        results = answer_eval.run(items, ask, progress)
    rep = answer_eval.report(results)
    rep["set"], rep["model"] = aset.name, {"source": choice.source, "local_llm": es.local_llm,
                                           "base_url": es.llm_base_url, "max_tokens": max_tokens or es.llm_answer_tokens}
    return rep
