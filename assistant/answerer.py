"""Question in, grounded answer out: rewrite -> retrieve -> fit -> generate (streamed) -> validate.

Timings (milliseconds, from the moment the question arrives): ``retrieval_ms`` the search
alone; ``ttft_ms`` until the first answer text is handed to the caller (what the user waits
for; in JSON mode that is the first complete sentence); ``total_ms`` until the final answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from assistant.answer_models import Answer, AnswerEvent, final_answer
from assistant.citations import StreamingMarkFilter
from assistant.conversation import History, standalone_query
from assistant.extractive import extractive_answer
from assistant.grounding import StructuredStream, ground, refused, render_structured
from assistant.prompts import answer_messages, answer_schema, passage_block
from assistant.support import SupportChecker
from retrieval.models import Passage
from retrieval.settings import Settings

if TYPE_CHECKING:
    from assistant.llm_client import LLMClient

log = logging.getLogger(__name__)

Retrieve = Callable[[str], list[Passage]]
# Chat-template tokens around a passage block that counting the block alone misses.
_BLOCK_OVERHEAD = 4


class Answerer:
    """Answers questions from retrieved passages, every claim cited or the answer refused.

    ``llm=None`` (no model configured) answers extractively. LLM errors propagate (their
    ``user_message`` is for the user) unless ``fallback_to_extractive`` is set, as the CLI does
    for the embedded default, in which case the answer is extractive with the error as notice.
    ``structured``: None follows ``settings.llm_answer_format`` ("auto" = JSON schema when
    the server supports it). ``rewrite_with_llm=False`` rewrites follow-ups by the heuristic
    only: a 0.5B model's rewrites are mostly rejected anyway (see ``conversation``), so on a
    small CPU box the extra call is wasted time.
    """

    def __init__(
        self,
        settings: Settings,
        llm: LLMClient | None,
        retrieve: Retrieve,
        *,
        checker: SupportChecker | None = None,
        meaning: Callable[[list[str]], object] | None = None,
        fallback_to_extractive: bool = False,
        structured: bool | None = None,
        max_tokens: int | None = None,
        rewrite_with_llm: bool = True,
    ):
        self.settings = settings
        self.llm = llm
        self.retrieve = retrieve
        # meaning: texts -> e5 vectors, handed in by the composition root (the index's own
        # embedder), so a claim in another language than its passage is checked by meaning.
        self.checker = checker or SupportChecker(cross_lingual=meaning)
        self.fallback_to_extractive = fallback_to_extractive
        self.structured = structured
        self.max_tokens = max_tokens or settings.llm_answer_tokens
        self.rewrite_with_llm = rewrite_with_llm

    def answer(self, question: str, history: History | None = None) -> Answer:
        return final_answer(self.stream_answer(question, history))

    def stream_answer(self, question: str, history: History | None = None) -> Iterator[AnswerEvent]:
        started = time.perf_counter()
        question = self.validate(question)
        timings: dict[str, float] = {}
        passages = self.retrieve_for(question, history, timings, started)
        yield from self.answer_from(question, passages, timings, started)

    def retrieve_for(self, question: str, history: History | None, timings: dict[str, float],
                     started: float) -> list[Passage]:
        """The passages for ``question`` (a follow-up rewritten against ``history`` first)."""
        rewriter = self.llm if self.rewrite_with_llm else None
        query = standalone_query(question, history, rewriter) if history else question
        timings["rewrite_ms"] = (time.perf_counter() - started) * 1000.0
        t_search = time.perf_counter()
        passages = list(self.retrieve(query))
        timings["retrieval_ms"] = (time.perf_counter() - t_search) * 1000.0
        return passages

    def answer_from(self, question: str, passages: list[Passage], timings: dict[str, float],
                    started: float) -> Iterator[AnswerEvent]:
        """The answer's events from passages already found (best first); ``started``: when the
        question arrived (``time.perf_counter()``), for the timings."""
        if not passages:
            yield AnswerEvent(type="passages", passages=[])
            yield self.finish(refused(question, stage="retrieval"), timings, started)
            return
        if self.llm is None:
            yield AnswerEvent(type="passages", passages=passages)
            yield self.finish(extractive_answer(question, passages), timings, started)
            return

        from assistant.errors import LLMServerError, LLMTimeoutError, LLMUnavailableError

        try:
            structured = self._use_structured()
            fitted = self.fit_passages(question, passages, structured=structured)
            yield AnswerEvent(type="passages", passages=fitted)
            if not fitted:
                yield self.finish(
                    refused(question, notice="The question is too long for the model's context.", stage="context"),
                    timings, started,
                )
                return
            messages = answer_messages(question, fitted, structured=structured)
            generate = self._stream_structured if structured else self._stream_inline
            answer = None
            for item in generate(question, fitted, messages):
                if isinstance(item, Answer):
                    answer = item
                    break
                if "ttft_ms" not in timings:
                    timings["ttft_ms"] = (time.perf_counter() - started) * 1000.0
                yield AnswerEvent(type="delta", text=item)
        except (LLMUnavailableError, LLMTimeoutError, LLMServerError) as exc:
            if not self.fallback_to_extractive:
                raise
            log.warning("LLM failed, answering extractively: %s", exc)
            answer = extractive_answer(question, passages, notice=exc.user_message)
        yield self.finish(answer, timings, started)

    # --- steps ------------------------------------------------------------------------------

    def validate(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("The question is empty.")
        question = question.strip()
        if len(question) > self.settings.max_question_chars:
            raise ValueError(
                f"The question has {len(question)} characters; the limit is {self.settings.max_question_chars}."
            )
        return question

    def _use_structured(self) -> bool:
        if self.structured is not None:
            return self.structured
        mode = self.settings.llm_answer_format
        if mode == "auto":
            return self.llm.info().has_json_schema
        return mode == "json"

    def fit_passages(
        self, question: str, passages: Sequence[Passage], *, structured: bool = False, reserve: int = 0
    ) -> list[Passage]:
        """The best-ranked passages whose prompt fits the server's context, answer reserved.

        ``reserve``: tokens the request needs besides (a client's tools and their results).
        One count of the whole prompt settles the usual case; only when it does not fit are the
        blocks counted one by one, and lower-ranked passages that do not fit are dropped.
        """
        budget = self.llm.context_budget(reserve_answer=self.max_tokens) - reserve
        if self.llm.count_tokens(answer_messages(question, passages, structured=structured)) <= budget:
            return list(passages)
        used = self.llm.count_tokens(answer_messages(question, [], structured=structured))
        kept: list[Passage] = []
        for p in passages:
            cost = self.llm.count_tokens(passage_block(len(kept) + 1, p)) + _BLOCK_OVERHEAD
            if used + cost <= budget:
                kept.append(p)
                used += cost
        while kept and self.llm.count_tokens(answer_messages(question, kept, structured=structured)) > budget:
            kept.pop()
        log.info("context budget %d tokens: kept %d of %d passages", budget, len(kept), len(passages))
        return kept

    def _stream_inline(
        self, question: str, passages: list[Passage], messages: list[dict]
    ) -> Iterator[str | Answer]:
        marks = StreamingMarkFilter(range(1, len(passages) + 1))
        raw: list[str] = []
        for delta in self.llm.stream(
            messages, max_tokens=self.max_tokens, temperature=self.settings.llm_temperature
        ):
            raw.append(delta)
            text = marks.feed(delta)
            if text:
                yield text
        tail = marks.flush()
        if tail:
            yield tail
        yield ground("".join(raw), question, passages, self.checker)

    def _stream_structured(
        self, question: str, passages: list[Passage], messages: list[dict]
    ) -> Iterator[str | Answer]:
        valid = list(range(1, len(passages) + 1))
        parser = StructuredStream()
        shown = ""
        for delta in self.llm.stream(
            messages,
            max_tokens=self.max_tokens,
            temperature=self.settings.llm_temperature,
            json_schema=answer_schema(valid),
        ):
            if parser.feed(delta):
                visible = render_structured(
                    [(t, [n for n in ids if n in valid]) for t, ids in parser.sentences]
                )
                if visible.startswith(shown) and len(visible) > len(shown):
                    yield visible[len(shown) :]
                    shown = visible
        raw = render_structured(parser.sentences)
        yield ground(raw, question, passages, self.checker, found=parser.found)

    def finish(self, answer: Answer, timings: dict[str, float], started: float) -> AnswerEvent:
        """The final event: ``answer`` with its timings (``total_ms`` now)."""
        total = (time.perf_counter() - started) * 1000.0
        timings = {**timings, "total_ms": total}
        timings.setdefault("ttft_ms", total)
        answer = answer.model_copy(update={"timings": {k: round(v, 1) for k, v in timings.items()}})
        return AnswerEvent(type="final", answer=answer)
