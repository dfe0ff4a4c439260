"""Asking: search, grounded answers and summaries, each under the caller's access filter and,
for answers and summaries, through the one guard (rate limit, safety policy, metrics, audit)."""

from __future__ import annotations

from typing import Iterator

from assistant.answer_models import Answer, AnswerEvent, SummaryEvent
from assistant.tool_answers import ToolRound
from retrieval.models import Principal, SearchReport
from ui.usecases.errors import NoLanguageModelError

ANSWER_PASSAGES = 8


class Answers:
    def search(self, principal: Principal, question: str, collections: list[str], *, mode: str | None = None,
               k: int = 8, document_ids: list[str] | None = None, window: int = 0) -> SearchReport:
        """Ranked passages the principal may read; ``window`` adds neighbouring chunks of context,
        under the same filter. Raises ``SearchError`` for a request that cannot run as asked."""
        searcher = self.searcher
        return searcher.search(question, principal, list(collections), mode=mode or searcher.best_mode, k=k,
                               document_ids=document_ids, window=window)

    def ask(self, principal: Principal, collections: list[str], question: str,
            history: list[dict] | None = None, k: int = ANSWER_PASSAGES,
            max_tokens: int | None = None, *, via: str | None = None,
            strict: bool = False) -> Iterator[AnswerEvent]:
        """A grounded, streamed answer from passages retrieved under ``principal``'s filter.
        A refusal (rate limit, safety policy, nothing found) is an ordinary final event.

        ``strict`` is for front ends with status codes (the HTTP API): the rate limit raises
        ``RateLimitedError`` and a failing model raises its ``LLM…Error`` instead of the
        extractive answer the app and the CLI fall back to. ``via`` goes into the audit line."""
        names = list(collections)
        answerer = self._answerer(principal, names, k, max_tokens, strict=strict)
        return self.guard.stream(principal, names, question, lambda q: answerer.stream_answer(q, history or None),
                                 via=via, raise_rate_limit=strict)

    def ask_with_tools(self, principal: Principal, collections: list[str], question: str,
                       history: list[dict] | None, round_: ToolRound, *, k: int = ANSWER_PASSAGES,
                       max_tokens: int | None = None, via: str | None = None) -> Iterator[AnswerEvent]:
        """``ask`` with a client's tools (the HTTP API): the same retrieval under ``principal``'s
        filter and the same guard; the final answer is either calls for the client to run
        (mode ``tool_calls``) or a grounded answer. Strict as ``ask(strict=True)`` is."""
        from assistant.tool_answerer import ToolAnswerer

        answerer = self._answerer(principal, collections, k, max_tokens, strict=True)
        if answerer.llm is None:
            raise NoLanguageModelError(self.llm.notice)
        tools = ToolAnswerer(answerer)
        return self.guard.stream(principal, list(collections), question,
                                 lambda q: tools.stream(q, history or None, round_),
                                 via=via, raise_rate_limit=True)

    def _answerer(self, principal: Principal, collections: list[str], k: int, max_tokens: int | None,
                  *, strict: bool):
        from assistant.answerer import Answerer

        names = list(collections)
        searcher = self.searcher

        def retrieve(query: str):
            return searcher.search(query, principal, names, mode=searcher.best_mode, k=k).passages

        return Answerer(self.settings, self.llm.client, retrieve, meaning=searcher.embedder.embed_queries,
                        fallback_to_extractive=not strict, max_tokens=max_tokens)

    def answer_as_data(self, answer: Answer, schema: dict) -> str:
        """The checked ``answer`` as JSON matching ``schema`` (the API's ``response_format``);
        the facts come from the answer and the quotes it cites, nothing else."""
        from assistant.answer_data import answer_as_data

        llm = self.llm
        if llm.client is None:
            raise NoLanguageModelError(llm.notice)
        return answer_as_data(llm.client, answer, schema)

    def summarize(self, principal: Principal, collection: str, document_id: str) -> Iterator[SummaryEvent]:
        """A streamed summary of a readable document, through the guard: rate limit, output
        safety policy, one audit line. Raises ``DocumentUnavailableError`` before any model call
        for a document the principal may not read, ``NoLanguageModelError`` without a model and
        ``SummaryRefusedError`` when the guard stops it."""
        from assistant.summarizer import stream_summary

        rec = self.workspace.catalog.find(collection)
        info = self.document(principal, collection, document_id)  # the access check, before all else
        # Read here, never taken from the caller: only the text this principal may read goes in.
        sections = self.summary_sections(principal, collection, document_id)
        llm = self.llm
        if llm.client is None:
            raise NoLanguageModelError(llm.notice)
        return self.guard.stream_summary(
            principal, [rec.id], info.document_id,
            lambda: stream_summary(sections, llm.client, max_tokens=self.settings.llm_answer_tokens))
