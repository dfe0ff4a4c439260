"""Around every question: rate limit and safety policy before, output check while streaming,
then metrics and one audit line whatever happened.

``AnswerGuard.stream`` wraps any stream of ``AnswerEvent`` (``Answerer.stream_answer``) without
knowing how answers are made::

    guard = AnswerGuard.from_settings(settings, metrics)
    events = guard.stream(principal, collections, question,
                          lambda q: answerer.stream_answer(q, history))

A refusal (rate limit, policy) is an ordinary ``final`` event whose answer has mode
``refused`` and the reason as text and notice, so the UI and the CLI show it like any answer.
Streamed text is checked as it grows; when the output policy trips mid-stream, the stream is
stopped and the final event replaces what was shown (as a final event always does). Nothing
here logs the question or the answer.

``AnswerGuard.stream_summary`` is the same for summaries (rate limit, output policy on the
streamed text and the final summary, one ``summary`` audit line), the one path the app and
``docent summarize`` both take. A summary has no refused form, so its refusal is raised
(:class:`SummaryRefusedError`): a front end that does not handle it shows an error, never
the withheld text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

from assistant.answer_models import Answer, AnswerEvent, SummaryEvent
from assistant.audit import AuditLog, Outcome, cited_documents
from assistant.rate_limit import RateLimitedError, RateLimiter
from assistant.safety import Classifier, SafetyPolicy, Verdict
from retrieval.models import Principal
from retrieval.settings import Settings
from retrieval.telemetry import Metrics, error_kind

log = logging.getLogger(__name__)

AnswerStream = Callable[[str], Iterator[AnswerEvent]]
SummaryStream = Callable[[], Iterator[SummaryEvent]]


def refusal(message: str) -> AnswerEvent:
    return AnswerEvent(type="final", answer=Answer(answer=message, mode="refused", notice=message,
                                                   refusal_stage="guard"))


class SummaryRefusedError(PermissionError):
    """The rate limit or the output policy stopped a summary; the message is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.user_message = message


class AnswerGuard:
    def __init__(self, policy: SafetyPolicy, limiter: RateLimiter, audit: AuditLog, metrics: Metrics | None = None):
        self.policy = policy
        self.limiter = limiter
        self.audit = audit
        self.metrics = metrics

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None,
                      classifier: Classifier | None = None) -> "AnswerGuard":
        return cls(SafetyPolicy.from_settings(settings, classifier), RateLimiter(settings.questions_per_minute),
                   AuditLog.from_settings(settings), metrics)

    # --- bookkeeping ------------------------------------------------------------------------
    def record(self, principal: Principal, collections: Sequence[str], outcome: Outcome, *,
               event: str = "question", started: float | None = None, **kw) -> None:
        """One audit line and the question counter; also for callers outside ``stream``
        (summaries: ``event="summary", documents=[...]``)."""
        timings = dict(kw.pop("timings_ms", {}) or {})
        if started is not None:
            timings.setdefault("total_ms", (time.perf_counter() - started) * 1000.0)
        if self.metrics is not None and event == "question":
            self.metrics.questions.labels(outcome).inc()
        try:
            self.audit.record(AuditLog.event_for(principal, collections, outcome, event=event, timings_ms=timings, **kw))
        except OSError as exc:  # the answer must not fail because the audit volume is full
            log.error("audit log not written: %s", exc)
            if self.metrics is not None:
                self.metrics.errors.labels("audit_write").inc()

    def _refuse(self, principal: Principal, collections: Sequence[str], question: str, verdict: Verdict,
                direction: str, started: float, answer_text: str = "", **kw) -> AnswerEvent:
        if self.metrics is not None:
            self.metrics.safety_refusals.labels(direction, verdict.rule or "unknown").inc()
        self.record(principal, collections, "blocked_input" if direction == "input" else "blocked_output",
                    started=started, rule=verdict.detail or verdict.rule, question=question, answer=answer_text,
                    **kw)
        return refusal(verdict.message)

    # --- the guarded stream -----------------------------------------------------------------
    def stream(self, principal: Principal, collections: Sequence[str], question: str,
               answer_stream: AnswerStream, *, via: str | None = None,
               raise_rate_limit: bool = False) -> Iterator[AnswerEvent]:
        """``via`` names a front end in the audit line (the API's key); ``raise_rate_limit``
        raises :class:`RateLimitedError` instead of answering with the limit's refusal, for a
        front end that has a status code for it (HTTP 429)."""
        started = time.perf_counter()
        question = question or ""
        kw = {"via": via} if via else {}
        decision = self.limiter.check(principal.user)
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.rate_limited.inc()
            self.record(principal, collections, "rate_limited", started=started, question=question, **kw)
            if raise_rate_limit:
                raise RateLimitedError(decision)
            yield refusal(decision.message)
            return
        verdict = self.policy.check_input(question)
        if not verdict.allowed:
            yield self._refuse(principal, collections, question, verdict, "input", started, **kw)
            return

        events = answer_stream(question)
        shown = ""
        finished = False
        try:
            for event in events:
                if event.type == "delta":
                    shown += event.text
                    verdict = self.policy.check_output(shown, final=False)
                    if not verdict.allowed:
                        close = getattr(events, "close", None)
                        if close is not None:
                            close()  # stop generating: nothing more of it reaches the user
                        finished = True
                        yield self._refuse(principal, collections, question, verdict, "output", started, shown, **kw)
                        return
                    yield event
                elif event.type == "final" and event.answer is not None:
                    finished = True
                    yield self._final(principal, collections, question, event.answer, started, **kw)
                    return
                else:
                    yield event
        except GeneratorExit:
            if not finished:
                self.record(principal, collections, "abandoned", started=started, question=question, answer=shown,
                            **kw)
            raise
        except ValueError as exc:  # the answerer's own input checks (empty question, …)
            finished = True
            self.record(principal, collections, "invalid", started=started, question=question,
                        error_kind=error_kind(exc), **kw)
            raise
        except Exception as exc:
            finished = True
            kind = self.metrics.observe_error(exc) if self.metrics is not None else error_kind(exc)
            self.record(principal, collections, "error", started=started, question=question, answer=shown,
                        error_kind=kind, **kw)
            raise

    def _final(self, principal: Principal, collections: Sequence[str], question: str, answer: Answer,
               started: float, **kw) -> AnswerEvent:
        # A tool call's arguments are model output too (they go to the client's tools).
        checked = "\n".join([answer.answer, *(call.arguments for call in answer.tool_calls)])
        verdict = self.policy.check_output(checked, final=True)
        if not verdict.allowed:
            return self._refuse(principal, collections, question, verdict, "output", started, answer.answer, **kw)
        timings = dict(answer.timings)
        if self.metrics is not None:
            if "ttft_ms" in timings:
                self.metrics.answer_ttft.observe(timings["ttft_ms"] / 1000.0)
            self.metrics.answer_latency.observe(timings.get("total_ms", (time.perf_counter() - started) * 1000) / 1000.0)
        self.record(principal, collections, answer.mode, timings_ms=timings, question=question,
                    answer=answer.answer, cited=cited_documents(answer.citations), passages=len(answer.passages), **kw)
        return AnswerEvent(type="final", answer=answer)

    # --- the guarded summary ----------------------------------------------------------------
    def stream_summary(self, principal: Principal, collections: Sequence[str], document_id: str,
                       summary_stream: SummaryStream) -> Iterator[SummaryEvent]:
        """The summariser's events under the rules answers follow; raises
        :class:`SummaryRefusedError` instead of yielding text the policy blocks."""
        started = time.perf_counter()
        kw = dict(event="summary", documents=[document_id])
        decision = self.limiter.check(principal.user)
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.rate_limited.inc()
            self.record(principal, collections, "rate_limited", started=started, **kw)
            raise SummaryRefusedError(decision.message)
        events = summary_stream()
        shown = ""
        finished = False
        try:
            for event in events:
                final = event.type == "final" and event.summary is not None
                if event.type == "delta" or final:
                    shown = event.summary.text if final else shown + event.text
                    verdict = self.policy.check_output(shown, final=final)
                    if not verdict.allowed:
                        close = getattr(events, "close", None)
                        if close is not None:
                            close()  # stop generating: nothing more of it reaches the user
                        finished = True
                        refused = self._refuse(principal, collections, "", verdict, "output", started, shown, **kw)
                        raise SummaryRefusedError(refused.answer.answer)
                if final:
                    finished = True
                    self.record(principal, collections, "generated", started=started, answer=shown,
                                timings_ms=dict(event.summary.timings), **kw)
                yield event
        except GeneratorExit:
            if not finished:
                self.record(principal, collections, "abandoned", started=started, answer=shown, **kw)
            raise
        except SummaryRefusedError:
            raise
        except ValueError as exc:  # the summariser's own input checks (a document without text)
            finished = True
            self.record(principal, collections, "invalid", started=started, error_kind=error_kind(exc), **kw)
            raise
        except Exception as exc:
            finished = True
            kind = self.metrics.observe_error(exc) if self.metrics is not None else error_kind(exc)
            self.record(principal, collections, "error", started=started, answer=shown, error_kind=kind, **kw)
            raise
