"""Page-level retrieval quality: did search bring back the page a question's answer is on?

Questions come as JSON lines in the FinanceBench layout (``question``, ``doc_name``, ``evidence``:
[{``evidence_page_num``}], the page number 0-based into the PDF); Docent's ``Passage.page`` is
1-based, so evidence pages are shifted by one on load. A passage counts as a page hit when it
comes from the question's filing (file stem == ``doc_name``) and its page span covers an evidence
page; a filing hit when it comes from that filing at all. MRR is of the first page hit in the top 10.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Callable, Iterable, Sequence

from retrieval.evaluation import percentile

KS = (1, 5, 10)
DEPTH = max(KS)


class QuestionFormatError(ValueError):
    """The questions file is missing or a line is malformed (names the file and line)."""


@dataclass(frozen=True)
class PageQuestion:
    qid: str
    text: str
    doc: str  # the filing's file stem
    pages: frozenset[int]  # 1-based evidence pages


@dataclass(frozen=True)
class Hit:
    """One ranked passage reduced to what the metric needs."""

    doc: str
    page: int | None
    page_end: int | None

    def covers(self, pages: frozenset[int]) -> bool:
        if self.page is None:
            return False
        return any(self.page <= p <= (self.page_end or self.page) for p in pages)


def doc_of(path: str) -> str:
    return PurePath(path).stem


def load_questions(path: Path) -> list[PageQuestion]:
    if not Path(path).is_file():
        raise QuestionFormatError(f"{path}: file not found")
    out: list[PageQuestion] = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                pages = frozenset(int(e["evidence_page_num"]) + 1 for e in obj["evidence"])
                text, doc = str(obj["question"]), str(obj["doc_name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise QuestionFormatError(f"{path}:{n}: expected question, doc_name and evidence[].evidence_page_num "
                                          f"({type(exc).__name__}: {exc})") from None
            if not text.strip() or not pages:
                raise QuestionFormatError(f"{path}:{n}: empty question or no evidence page")
            out.append(PageQuestion(str(obj.get("financebench_id") or n), text, doc, pages))
    return out


def first_hit(hits: Sequence[Hit], q: PageQuestion, page: bool) -> int | None:
    """0-based rank of the first passage from the question's filing (covering an evidence page
    when ``page``), or None."""
    for i, h in enumerate(hits):
        if h.doc == q.doc and (not page or h.covers(q.pages)):
            return i
    return None


def score(rankings: dict[str, Sequence[Hit]], questions: Iterable[PageQuestion],
          latencies_ms: Sequence[float] = ()) -> dict[str, float]:
    qs = list(questions)
    if not qs:
        raise ValueError("no question to score")
    sums = {f"page_hit@{k}": 0.0 for k in KS} | {f"filing_hit@{k}": 0.0 for k in KS} | {"mrr@10": 0.0}
    for q in qs:
        hits = list(rankings.get(q.qid, ()))[:DEPTH]
        page_rank, doc_rank = first_hit(hits, q, page=True), first_hit(hits, q, page=False)
        for k in KS:
            sums[f"page_hit@{k}"] += page_rank is not None and page_rank < k
            sums[f"filing_hit@{k}"] += doc_rank is not None and doc_rank < k
        sums["mrr@10"] += 1.0 / (page_rank + 1) if page_rank is not None else 0.0
    out = {key: round(v / len(qs), 4) for key, v in sums.items()}
    out["questions"] = len(qs)
    out["p50_ms"] = round(percentile(latencies_ms, 50), 1) if latencies_ms else float("nan")
    out["p95_ms"] = round(percentile(latencies_ms, 95), 1) if latencies_ms else float("nan")
    return out


# A search under evaluation: question text -> passages as hits, best first.
RankFn = Callable[[str], list[Hit]]


def run_questions(rank: RankFn, questions: Sequence[PageQuestion], warmup: int = 3,
                  rankings: dict[str, list[Hit]] | None = None) -> dict[str, float]:
    """Rank every question, timing each call (the first ``warmup`` run twice, timed the second
    time, so model loading does not land in p95), and score the rankings (kept in ``rankings``
    when given, per question id)."""
    rankings = {} if rankings is None else rankings
    latencies: list[float] = []
    for i, q in enumerate(questions):
        if i < warmup:
            rank(q.text)
        t0 = time.perf_counter()
        rankings[q.qid] = rank(q.text)
        latencies.append((time.perf_counter() - t0) * 1000)
    return score(rankings, questions, latencies)
