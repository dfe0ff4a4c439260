"""An ``LLMClient`` that records what each request cost: time to first token, total time,
tokens in and out, errors by kind (``retrieval.telemetry``).

It wraps the client instead of living inside it, so the client stays about talking to the
server and anything that takes an LLMClient (answers, summaries, query rewriting) takes this.
Token counts use the served tokenizer (``count_tokens``), the same one vLLM counts with; the
prompt's count is usually already cached from fitting the passages into the context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from retrieval.telemetry import Metrics


class InstrumentedLLM:
    """``InstrumentedLLM(LLMClient(settings), metrics)``: same interface, measured."""

    def __init__(self, llm: Any, metrics: Metrics):
        self._llm = llm
        self._metrics = metrics

    def _model(self) -> str:
        try:
            return self._llm.info().model
        except Exception:
            return getattr(self._llm.settings, "llm_model", "unknown")

    def stream(self, messages: list[dict], **kw: Any) -> Iterator[str]:
        m = self._metrics
        started = time.perf_counter()
        parts: list[str] = []
        model = None
        try:
            for text in self._llm.stream(messages, **kw):
                if not parts:
                    model = self._model()
                    m.llm_ttft.labels(model).observe(time.perf_counter() - started)
                parts.append(text)
                yield text
        except GeneratorExit:  # the reader stopped early (a safety stop, a closed page): not an error
            m.llm_requests.labels(model or self._model(), "cancelled").inc()
            raise
        except Exception as exc:
            m.llm_requests.labels(model or self._model(), "error").inc()
            m.observe_error(exc)
            raise
        self._finish(model or self._model(), started, messages, "".join(parts))

    def complete(self, messages: list[dict], **kw: Any) -> str:
        return "".join(self.stream(messages, **kw))

    async def acomplete(self, messages: list[dict], **kw: Any) -> str:
        started = time.perf_counter()
        try:
            text = await self._llm.acomplete(messages, **kw)
        except Exception as exc:
            self._metrics.llm_requests.labels(self._model(), "error").inc()
            self._metrics.observe_error(exc)
            raise
        # Counting goes to the server over the sync client: off the event loop.
        await asyncio.to_thread(self._finish, self._model(), started, messages, text)
        return text

    def _finish(self, model: str, started: float, messages: list[dict], text: str) -> None:
        m = self._metrics
        m.llm_latency.labels(model).observe(time.perf_counter() - started)
        m.llm_requests.labels(model, "ok").inc()
        try:
            m.llm_prompt_tokens.labels(model).inc(self._llm.count_tokens(messages))
            if text:
                m.llm_generation_tokens.labels(model).inc(self._llm.count_tokens(text))
        except Exception as exc:  # counting is bookkeeping: never fail an answer over it
            m.observe_error(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)
