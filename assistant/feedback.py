"""Thumbs up/down on answers, kept with the question, the passages and the answer, and exported
as a BEIR-layout evaluation set that ``docent eval`` reads.

Privacy follows the audit log's setting (``audit_include_text``): unless it is on, a record
keeps the rating, the user, the collections and the ids, pages and offsets of what the answer
cited, but no question, answer, passage or comment text (and so nothing to export). Removing a
document removes the text of every record that showed it (``forget_document``, called by
``Index.remove_document`` so every way of removing one does it).

Export rules: a thumbs-up makes the passages its answer cited relevant (score 1) to the
question; a thumbs-down records them as judged not relevant (score 0), which evaluation
keeps as a judgment but does not count as a query with a relevant document. Every passage the
answer was shown (cited or not) goes into the corpus, so retrieval has distractors to beat.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Literal

from pydantic import BaseModel, Field

from assistant.answer_models import Answer
from retrieval.models import Passage
from retrieval.private_files import private_sqlite
from retrieval.settings import Settings

Rating = Literal["up", "down"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    user TEXT NOT NULL,
    collections TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
"""


class FeedbackRecord(BaseModel):
    id: int
    created_at: float
    user: str
    collections: list[str] = Field(default_factory=list)
    question: str
    answer: Answer
    rating: Rating
    comment: str = ""

    @property
    def cited_passages(self) -> list[Passage]:
        numbers = sorted({c.n for c in self.answer.citations})
        return [self.answer.passages[n - 1] for n in numbers if 1 <= n <= len(self.answer.passages)]


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    queries: int
    corpus: int
    relevant: int
    not_relevant: int


def passage_key(p: Passage) -> str:
    """A stable corpus id: the same span of the same document version gets the same id."""
    raw = f"{p.document_id}\x00{p.start}\x00{p.end}\x00{p.chunk_ids[0] if p.chunk_ids else ''}"
    return "p-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def feedback_path(settings: Settings) -> Path:
    return settings.data_dir / "feedback.sqlite3"


def without_text(answer: Answer) -> Answer:
    """The answer with every text of it or of its documents blanked; ids, pages, offsets,
    titles and paths (what the audit log keeps of a citation) stay."""
    return answer.model_copy(update={
        "answer": "",
        "citations": [c.model_copy(update={"quote": "", "heading_path": []}) for c in answer.citations],
        "sentences": [s.model_copy(update={"text": ""}) for s in answer.sentences],
        "passages": [p.model_copy(update={"text": "", "context_before": "", "context_after": "", "heading_path": []})
                     for p in answer.passages],
    })


def _shows(answer: Answer, document_id: str) -> bool:
    return any(x.document_id == document_id for x in (*answer.passages, *answer.citations))


class FeedbackStore:
    def __init__(self, path: Path, include_text: bool = False):
        self.path = path
        self.include_text = include_text
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> "FeedbackStore":
        return cls(feedback_path(settings), settings.audit_include_text)

    def _connect(self) -> ContextManager[sqlite3.Connection]:
        return private_sqlite(self.path)

    def add(self, user: str, question: str, answer: Answer, rating: Rating, comment: str = "",
            collections: list[str] | None = None) -> int:
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        if not question.strip():
            raise ValueError("feedback needs the question it rates")
        if not self.include_text:
            question, answer, comment = "", without_text(answer), ""
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO feedback (created_at, user, collections, question, answer, rating, comment)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), user, json.dumps(collections or []), question,
                 answer.model_dump_json(), rating, comment.strip()),
            )
            return int(cur.lastrowid)

    def update(self, feedback_id: int, rating: Rating | None = None, comment: str | None = None) -> None:
        """A user changing their mind (or adding a comment) edits their record, not a new one."""
        if rating is not None and rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        with self._connect() as db:
            if rating is not None:
                db.execute("UPDATE feedback SET rating = ? WHERE id = ?", (rating, feedback_id))
            if comment is not None and self.include_text:
                db.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip(), feedback_id))

    def list(self, rating: Rating | None = None, user: str | None = None, limit: int = 1000) -> list[FeedbackRecord]:
        query, args = "SELECT * FROM feedback", []
        where = []
        if rating:
            where.append("rating = ?")
            args.append(rating)
        if user:
            where.append("user = ?")
            args.append(user)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, (*args, limit)).fetchall()
        return [self._record(r) for r in rows]

    def delete(self, feedback_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM feedback WHERE id = ?", (feedback_id,))

    def forget_document(self, document_id: str) -> int:
        """Blank the texts of every record whose answer showed ``document_id`` (the rating and
        ids stay); returns how many. The WAL is checkpointed so the old text leaves it too."""
        with self._connect() as db:
            rows = db.execute("SELECT id, answer FROM feedback WHERE instr(answer, ?) > 0",
                              (document_id,)).fetchall()
            hit = [(r["id"], Answer.model_validate_json(r["answer"])) for r in rows]
            hit = [(i, a) for i, a in hit if _shows(a, document_id)]
            for i, a in hit:
                db.execute("UPDATE feedback SET question = '', comment = '', answer = ? WHERE id = ?",
                           (without_text(a).model_dump_json(), i))
        if hit:
            with self._connect() as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(hit)

    @staticmethod
    def _record(row: sqlite3.Row) -> FeedbackRecord:
        return FeedbackRecord(
            id=row["id"], created_at=row["created_at"], user=row["user"],
            collections=json.loads(row["collections"]), question=row["question"],
            answer=Answer.model_validate_json(row["answer"]), rating=row["rating"], comment=row["comment"],
        )

    # --- export ---------------------------------------------------------------------------
    def export_beir(self, folder: Path, ratings: tuple[Rating, ...] = ("up", "down")) -> ExportSummary:
        records = [r for r in reversed(self.list(limit=1_000_000)) if r.rating in ratings]
        return write_beir(records, folder)


def write_beir(records: list[FeedbackRecord], folder: Path) -> ExportSummary:
    """corpus.jsonl, queries.jsonl and qrels/test.tsv (header row, tab-separated)."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    corpus: dict[str, Passage] = {}
    queries: list[tuple[str, str]] = []
    qrels: list[tuple[str, str, int]] = []
    for r in records:
        cited = r.cited_passages
        if not cited or not r.question:
            continue  # nothing to judge: refused, cited nothing, or kept without its text
        qid = f"fb-{r.id}"
        queries.append((qid, r.question))
        for p in r.answer.passages:
            corpus.setdefault(passage_key(p), p)
        score = 1 if r.rating == "up" else 0
        for p in dict((passage_key(p), p) for p in cited):
            qrels.append((qid, p, score))
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for key, p in corpus.items():
            fh.write(json.dumps({"_id": key, "title": p.title, "text": p.text,
                                 "metadata": {"document_id": p.document_id, "path": p.path, "page": p.page}},
                                ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in queries:
            fh.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, did, score in qrels:
            fh.write(f"{qid}\t{did}\t{score}\n")
    return ExportSummary(folder, len(queries), len(corpus), sum(1 for q in qrels if q[2] > 0),
                         sum(1 for q in qrels if q[2] == 0))


def forget_document(settings: Settings, document_id: str) -> int:
    """``FeedbackStore.forget_document`` where feedback is kept (no store is created for it)."""
    if not feedback_path(settings).exists():
        return 0
    return FeedbackStore.from_settings(settings).forget_document(document_id)
