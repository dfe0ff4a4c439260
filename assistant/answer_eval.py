"""Answer-level evaluation: questions with known answers, scored on what the user gets.

Retrieval metrics say whether the right passage was found; this says whether the answer the
user reads is right, cited and honest. Each question goes through a caller-supplied ``ask``
(the real answer path: retrieval, prompt, model, grounding, refusal logic, guard) and is
scored here:

- correct: the answer is not a refusal and contains a gold answer (``min_answers`` of them for
  questions with several valid answers, one per city say) after :func:`normalise`;
- false refusal: an answerable question refused; the refusing step (``Answer.refusal_stage``)
  is counted, so "the model said not found" and "the support check rejected it" are told apart;
- unanswerable refusal: a question whose gold passage is not in the index, refused;
- citation validity: every ``[n]`` in the answer and every citation points at a passage given;
- support: every citation of the answer passed the support check.

Question files are JSONL: ``id``, ``question``, ``answers`` (acceptable strings), ``answerable``,
``split`` ("tune" or "check": tune on one, report the other), optional ``note`` and
``min_answers`` (default 1).
"""

from __future__ import annotations

import json
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant import citations as cit
from assistant.answer_models import Answer
from assistant.lexical import zh_numerals_to_digits

SPLITS = ("tune", "check")


class QuestionFileError(ValueError):
    """A question file is missing or malformed (names the file and line)."""


@dataclass(frozen=True)
class QuestionItem:
    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    split: str
    note: str = ""
    min_answers: int = 1


def parse_item(obj: dict, where: str) -> QuestionItem:
    try:
        answers = tuple(str(a) for a in obj.get("answers") or ())
        item = QuestionItem(str(obj["id"]), str(obj["question"]).strip(), answers, bool(obj["answerable"]),
                            str(obj["split"]), str(obj.get("note") or ""), int(obj.get("min_answers", 1)))
    except (KeyError, TypeError, ValueError) as exc:
        raise QuestionFileError(f"{where}: needs id, question, answers, answerable, split ({exc})") from None
    if item.split not in SPLITS:
        raise QuestionFileError(f"{where}: split must be one of {SPLITS}, got {item.split!r}")
    if item.answerable and not item.answers:
        raise QuestionFileError(f"{where}: an answerable question needs at least one answer")
    if not item.question:
        raise QuestionFileError(f"{where}: empty question")
    return item


def load_questions(path: Path) -> list[QuestionItem]:
    if not path.is_file():
        raise QuestionFileError(f"{path}: file not found")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise QuestionFileError(f"{path}:{n}: not JSON: {exc}") from None
            items.append(parse_item(obj, f"{path}:{n}"))
    ids = Counter(i.id for i in items)
    if dup := [k for k, v in ids.items() if v > 1]:
        raise QuestionFileError(f"{path}: duplicate id {dup[0]!r}")
    return items


# --- matching -------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """NFKC, lower case, citation marks out, Chinese numerals as digits ("十五天" -> "15天"),
    and only letters and digits kept, so spacing, punctuation and "1,200" vs "1200" do not
    decide a match."""
    text = cit.MARKER_RE.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return "".join(ch for ch in zh_numerals_to_digits(text) if ch.isalnum())


def gold_hits(text: str, answers: Iterable[str]) -> int:
    said = normalise(text)
    return sum(1 for a in answers if (g := normalise(a)) and g in said)


def citations_valid(answer: Answer) -> bool:
    """Every [n] in the text and every citation names one of the passages given."""
    given = range(1, len(answer.passages) + 1)
    marks = [n for m in cit.MARKER_RE.finditer(answer.answer) for n in cit.parse_ids(m.group(1))]
    return all(n in given for n in marks) and all(c.n in given for c in answer.citations)


# --- one question ---------------------------------------------------------------------------
@dataclass
class QuestionResult:
    id: str
    split: str
    answerable: bool
    mode: str
    refusal_stage: str | None
    correct: bool
    citations_valid: bool
    supported: bool
    gold_in_passages: bool
    passages: int
    ttft_ms: float
    total_ms: float
    answer: str = field(repr=False, default="")
    # The model's sentences with their support scores, kept for refused drafts too.
    draft: list[dict] = field(repr=False, default_factory=list)

    @property
    def refused(self) -> bool:
        return self.mode == "refused"


def score(item: QuestionItem, answer: Answer) -> QuestionResult:
    refused = answer.mode == "refused"
    needed = max(1, min(item.min_answers, len(item.answers)))
    correct = not refused and item.answerable and gold_hits(answer.answer, item.answers) >= needed
    given = "\n".join(p.text for p in answer.passages)
    return QuestionResult(
        id=item.id, split=item.split, answerable=item.answerable, mode=answer.mode,
        refusal_stage=answer.refusal_stage if refused else None, correct=correct,
        citations_valid=refused or citations_valid(answer),
        supported=refused or all(c.supported for c in answer.citations),
        gold_in_passages=bool(item.answers) and gold_hits(given, item.answers) >= needed,
        passages=len(answer.passages), ttft_ms=float(answer.timings.get("ttft_ms", 0.0)),
        total_ms=float(answer.timings.get("total_ms", 0.0)), answer=answer.answer,
        draft=[{"text": s.text, "citations": s.citations, "score": s.score, "supported": s.supported}
               for s in answer.sentences],
    )


def run(items: Sequence[QuestionItem], ask: Callable[[str], Answer],
        progress: Callable[[int, int, QuestionResult], None] | None = None) -> list[QuestionResult]:
    results = []
    for i, item in enumerate(items, 1):
        result = score(item, ask(item.question))
        results.append(result)
        if progress:
            progress(i, len(items), result)
    return results


# --- the report -----------------------------------------------------------------------------
def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summarise(results: Sequence[QuestionResult]) -> dict:
    """The figures for one group of results (a split, or all of them)."""
    ans = [r for r in results if r.answerable]
    una = [r for r in results if not r.answerable]
    given = [r for r in results if not r.refused]
    false_refusals = [r for r in ans if r.refused]
    ttft = [r.ttft_ms for r in results]
    total = [r.total_ms for r in results]
    return {
        "questions": len(results), "answerable": len(ans), "unanswerable": len(una),
        "correct": _rate(sum(r.correct for r in ans), len(ans)),
        "false_refusal": _rate(len(false_refusals), len(ans)),
        "unanswerable_refusal": _rate(sum(r.refused for r in una), len(una)),
        "citation_validity": _rate(sum(r.citations_valid for r in given), len(given)),
        "support": _rate(sum(r.supported for r in given), len(given)),
        "gold_in_passages": _rate(sum(r.gold_in_passages for r in ans), len(ans)),
        "false_refusal_stages": dict(Counter(r.refusal_stage or "?" for r in false_refusals)),
        "answered_wrong": sum(1 for r in ans if not r.refused and not r.correct),
        "ttft_ms_median": round(statistics.median(ttft), 1) if ttft else None,
        "ttft_ms_p95": _pct(ttft, 0.95),
        "total_ms_median": round(statistics.median(total), 1) if total else None,
        "total_ms_p95": _pct(total, 0.95),
    }


def report(results: Sequence[QuestionResult]) -> dict:
    """Figures per split present and over all, plus every question's result."""
    groups = {s: [r for r in results if r.split == s] for s in SPLITS}
    out = {s: summarise(rs) for s, rs in groups.items() if rs}
    out["all"] = summarise(results)
    return {"summary": out, "questions": [asdict(r) for r in results]}


TABLE_COLUMNS = (("correct", "correct"), ("false_refusal", "false-ref"), ("unanswerable_refusal", "unans-ref"),
                 ("citation_validity", "cite-ok"), ("support", "support"), ("ttft_ms_median", "ttft-med"),
                 ("ttft_ms_p95", "ttft-p95"), ("total_ms_median", "total-med"), ("total_ms_p95", "total-p95"))


def table(summary: dict) -> str:
    lines = [f"{'split':<7}{'n':>5}" + "".join(f"{h:>11}" for _, h in TABLE_COLUMNS)]
    for split, s in summary.items():
        lines.append(f"{split:<7}{s['questions']:>5}" + "".join(f"{_cell(k, s[k]):>11}" for k, _ in TABLE_COLUMNS))
        if s["false_refusal_stages"]:
            stages = ", ".join(f"{k} {v}" for k, v in sorted(s["false_refusal_stages"].items()))
            lines.append(f"{'':<12}false refusals by stage: {stages}; answered but wrong: {s['answered_wrong']}")
    return "\n".join(lines)


def _cell(key: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.1f}s" if "_ms_" in key else f"{v:.0%}"
