"""Turn raw model output into a validated :class:`Answer`, or a refusal.

The model is not trusted to cite correctly or to admit ignorance: numbers outside its context
are removed, every claim is checked against what it cites, and an answer with no supported,
cited sentence is refused, whatever the model said.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from assistant import citations as cit
from assistant import lexical
from assistant.answer_models import Answer, Citation, RefusalStage, SentenceSupport
from assistant.prompts import REFUSAL_EN, REFUSAL_ZH
from assistant.support import SpanMatch, SupportChecker
from retrieval.models import Passage

_REFUSAL_KEYS = (
    "documents you can access don't answer this",
    "documents you can access do not answer this",
    "没有这个问题的答案",
)


def refusal_message(question: str) -> str:
    return REFUSAL_ZH if lexical.is_cjk(question) else REFUSAL_EN


def refused(
    question: str,
    passages: Sequence[Passage] = (),
    *,
    removed: Sequence[int] = (),
    notice: str | None = None,
    stage: RefusalStage | None = None,
    sentences: Sequence[SentenceSupport] = (),
) -> Answer:
    """The refusal; ``sentences``: what the model wrote and how it scored (never shown, kept
    so an evaluation can tell why a draft was rejected)."""
    return Answer(
        answer=refusal_message(question),
        mode="refused",
        passages=list(passages),
        removed_citations=list(removed),
        notice=notice,
        refusal_stage=stage,
        sentences=list(sentences),
    )


def says_refusal(text: str) -> bool:
    """The model used our refusal sentence (in its first sentence: that is its verdict)."""
    spans = lexical.sentence_spans(text)
    first = text[spans[0][0] : spans[0][1]] if spans else text
    norm = first.lower().replace("’", "'").replace("‘", "'")
    return any(k in norm for k in _REFUSAL_KEYS)


def ground(
    raw: str,
    question: str,
    passages: Sequence[Passage],
    checker: SupportChecker,
    *,
    found: bool | None = None,
    attribute: bool = True,
) -> Answer:
    """Validate ``raw`` (text with [n] marks) against ``passages`` (n = position + 1).

    ``attribute``: see :func:`repair_citations` (small models often forget the marks on
    correct claims, or cite the neighbouring passage).
    """
    valid = range(1, len(passages) + 1)
    rewritten = cit.rewrite_marks(raw, valid)
    removed = rewritten.removed
    text = rewritten.text.strip()
    if found is False or not text or says_refusal(text):
        return refused(question, passages, removed=removed, stage="model")
    attributed: set[str] = set()
    if attribute:
        sources = {i: p.text for i, p in enumerate(passages, 1)}
        text, attributed = repair_citations(text, sources, checker, question)

    sentences: list[SentenceSupport] = []
    best: dict[int, tuple[SpanMatch, bool]] = {}
    units = cit.cited_sentences(text)
    for sentence in units:
        if not sentence.ids:
            sentences.append(SentenceSupport(text=sentence.text, citations=[], supported=False, score=0.0))
            continue
        cited = {n: passages[n - 1].text for n in sentence.ids}
        result = checker.check(sentence.text, cited, question)
        sentences.append(
            SentenceSupport(
                text=sentence.text,
                citations=list(sentence.ids),
                supported=result.supported,
                score=result.score,
                attributed=sentence.text in attributed,
            )
        )
        for n in sentence.ids:
            span = result.spans[n]
            ok = checker.citation_supported(result, n)
            prev = best.get(n)
            if prev is None or (ok, span.score) > (prev[1], prev[0].score):
                best[n] = (span, ok or (prev[1] if prev else False))

    supported = [s.text for s in sentences if s.supported and s.citations]
    if not supported:
        return refused(question, passages, removed=removed, stage="support", sentences=sentences)
    if not checker.covers_question(question, supported):
        return refused(question, passages, removed=removed, stage="coverage", sentences=sentences)

    return Answer(
        answer=drop_uncited(text, units),
        mode="generated",
        citations=[_citation(n, passages[n - 1], span, ok) for n, (span, ok) in best.items()],
        sentences=sentences,
        passages=list(passages),
        removed_citations=removed,
    )


def drop_uncited(text: str, units: Sequence[cit.CitedSentence]) -> str:
    """The text without sentences that carry no citation even after attribution: what cannot
    be traced to a passage is not shown as part of the answer (it stays in ``sentences``)."""
    for unit in reversed(units):
        if not unit.ids:
            end = unit.end
            if (unit.start == 0 or text[unit.start - 1] == "\n") and text[end : end + 1] == "\n":
                end += 1  # the sentence was a whole line: the line goes too
            text = text[: unit.start] + text[end:]
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def repair_citations(
    text: str, sources: Mapping[int, str], checker: SupportChecker, question: str | None = None
) -> tuple[str, set[str]]:
    """Fix what small models get wrong about citations, when the fix can be verified.

    A sentence without marks gets the source that supports it best; a sentence whose marks
    point at sources that do not support it, while another source does, gets that one instead.
    Either way the new source must pass the same support check as any model-given citation.
    Returns the new text and the claims whose citations code chose.
    """
    term_sets = {n: lexical.term_set(t) for n, t in sources.items()}
    repaired: set[str] = set()
    for unit in reversed(cit.cited_sentences(text)):
        if unit.ids and checker.check(unit.text, {n: sources[n] for n in unit.ids}, question).supported:
            continue
        best = checker.best_source(unit.text, term_sets, question)
        if best is None or best[1] < checker.threshold or best[0] in unit.ids:
            continue
        n = best[0]
        if not checker.check(unit.text, {n: sources[n]}, question).supported:
            continue
        sentence = cit.MARKER_RE.sub("", text[unit.start : unit.end]).rstrip()
        text = text[: unit.start] + cit.render_sentence(sentence, [n]) + text[unit.end :]
        repaired.add(unit.text)
    return text, repaired


def _citation(n: int, passage: Passage, span: SpanMatch, supported: bool) -> Citation:
    # Offsets: the passage's own offset in the document plus the span's offset in the passage.
    return Citation(
        n=n,
        document_id=passage.document_id,
        title=passage.title,
        path=passage.path,
        page=passage.page_at(passage.start + span.start),
        heading_path=list(passage.heading_path),
        quote=passage.text[span.start : span.end],
        start=passage.start + span.start,
        end=passage.start + span.end,
        supported=supported,
    )


# --- structured (JSON schema) answers -------------------------------------------------------


@dataclass
class StructuredStream:
    """Incrementally reads ``{"found": .., "answer_sentences": [{"text", "citations"}, ..]}``
    as it streams, yielding each sentence once its object is complete. Output cut short by the
    token limit still yields the sentences finished before the cut."""

    buffer: str = ""
    found: bool | None = None
    sentences: list[tuple[str, list[int]]] = field(default_factory=list)
    _pos: int | None = None
    _decoder: json.JSONDecoder = field(default_factory=json.JSONDecoder)

    def feed(self, delta: str) -> list[tuple[str, list[int]]]:
        self.buffer += delta
        if self.found is None:
            m = re.search(r'"found"\s*:\s*(true|false)', self.buffer)
            if m:
                self.found = m.group(1) == "true"
        if self._pos is None:
            m = re.search(r'"answer_sentences"\s*:\s*\[', self.buffer)
            if not m:
                return []
            self._pos = m.end()
        new: list[tuple[str, list[int]]] = []
        while True:
            pos = self._pos
            while pos < len(self.buffer) and self.buffer[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(self.buffer) or self.buffer[pos] != "{":
                self._pos = pos
                break
            try:
                obj, end = self._decoder.raw_decode(self.buffer, pos)
            except json.JSONDecodeError:
                break
            self._pos = end
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                ids = [
                    int(n)
                    for n in obj.get("citations") or []
                    if isinstance(n, int | str) and str(n).isdigit()
                ]
                item = (obj["text"], ids)
                self.sentences.append(item)
                new.append(item)
        return new


def render_structured(sentences: Sequence[tuple[str, Sequence[int]]]) -> str:
    """Sentences with citation lists -> the same "[n]" text the inline mode produces; marks a
    sentence carries in its own text are folded into its list."""
    rendered = []
    for text, ids in sentences:
        inline = [n for m in cit.MARKER_RE.finditer(text) for n in cit.parse_ids(m.group(1))]
        rendered.append(cit.render_sentence(cit.strip_marks(text), dict.fromkeys([*ids, *inline])))
    return cit.join_sentences(rendered)
