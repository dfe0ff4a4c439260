"""Answers without a language model: the sentences of the top passages that best match the
question, quoted verbatim with their citations, under a line that says so plainly.

Used by the embedded default when no LLM is configured or the local one cannot be reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from assistant import lexical
from assistant.answer_models import Answer, Citation, SentenceSupport
from assistant.grounding import refused
from assistant.support import Claim
from retrieval.models import Passage

LEAD_EN = (
    "No language model is available, so this answer is extracted, not generated: "
    "these are the sentences from your documents that best match the question."
)
LEAD_ZH = "当前没有可用的语言模型，以下内容是摘录而非生成的回答：文档中与问题最相关的句子。"

_MIN_CHARS = 12


def extractive_answer(
    question: str,
    passages: Sequence[Passage],
    *,
    top_passages: int = 4,
    max_sentences: int = 4,
    min_sentences: int = 2,
    per_passage: int = 2,
    notice: str | None = None,
) -> Answer:
    """Pick 2-4 sentences by overlap with the question; refuse when none shares a term with it.

    Question terms are weighted by their inverse frequency among the candidate sentences, so a
    word every sentence repeats (the product name, say) does not decide the choice.
    """
    candidates: list[tuple[int, int, int]] = []  # (passage index, start, end) in passage text
    for i, p in enumerate(passages[:top_passages]):
        for a, b in lexical.sentence_spans(p.text):
            if b - a >= _MIN_CHARS or lexical.is_cjk(p.text[a:b]):
                candidates.append((i, a, b))
    if not candidates:
        return refused(question, passages, notice=notice, stage="extractive")

    weights = Claim.of(question).weights
    term_sets = [lexical.term_set(passages[i].text[a:b]) for i, a, b in candidates]
    df = {t: sum(1 for s in term_sets if t in s) for t in weights}
    idf = {t: w * math.log(1 + len(term_sets) / (1 + df[t])) for t, w in weights.items()}
    total = sum(idf.values())
    if not total:
        return refused(question, passages, notice=notice, stage="extractive")
    # Earlier passages rank higher in retrieval: a small bonus breaks ties in their favour.
    scored = sorted(
        (
            (sum(v for t, v in idf.items() if t in s) / total - 0.01 * cand[0], k)
            for k, (cand, s) in enumerate(zip(candidates, term_sets, strict=True))
        ),
        reverse=True,
    )
    best = scored[0][0]
    if best <= 0:
        return refused(question, passages, notice=notice, stage="extractive")

    chosen: list[tuple[float, int]] = []
    used: dict[int, int] = {}
    for score, k in scored:
        if len(chosen) >= max_sentences or score <= 0:
            break
        if len(chosen) >= min_sentences and score < 0.5 * best:
            break
        i = candidates[k][0]
        if used.get(i, 0) >= per_passage:
            continue
        used[i] = used.get(i, 0) + 1
        chosen.append((score, k))

    lines: list[str] = []
    cites: list[Citation] = []
    sentences: list[SentenceSupport] = []
    for score, k in chosen:
        i, a, b = candidates[k]
        p, n = passages[i], i + 1
        quote = p.text[a:b]
        lines.append(f"- {' '.join(quote.split())} [{n}]")
        # One citation per quoted sentence (a passage quoted twice appears twice, each exact).
        cites.append(
            Citation(
                n=n,
                document_id=p.document_id,
                title=p.title,
                path=p.path,
                page=p.page_at(p.start + a),
                heading_path=list(p.heading_path),
                quote=quote,
                start=p.start + a,
                end=p.start + b,
                supported=True,
            )
        )
        sentences.append(
            SentenceSupport(text=quote, citations=[n], supported=True, score=round(max(score, 0), 3))
        )

    lead = LEAD_ZH if lexical.is_cjk(question) else LEAD_EN
    return Answer(
        answer=lead + "\n\n" + "\n".join(lines),
        mode="extractive",
        citations=cites,
        sentences=sentences,
        passages=list(passages),
        notice=notice,
    )
