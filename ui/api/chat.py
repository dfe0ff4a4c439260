"""``POST /v1/chat/completions`` over ``Docent.ask``: the same grounded, guarded answer as in the
app, written as one OpenAI response object or as a stream of chunks.

Streaming: text is sent as the model writes it, so time to first token is the answer path's
own. The checked answer comes at the end (as in the app, where it replaces the streamed text);
when it differs from what was streamed (an unsupported sentence dropped, a refusal), the
stream appends it after a rule, since an OpenAI stream cannot take back text. The first events
are read before the response starts, so a rate limit, bad input or a model that is down still
gets its HTTP status instead of a broken stream.

With ``tools`` the answer is not streamed token by token (a reply may turn out to be tool
calls); calls come back as ``message.tool_calls`` / ``delta.tool_calls`` with finish reason
``tool_calls``, as OpenAI sends them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

from assistant.answer_models import Answer, AnswerEvent, final_answer
from assistant.tool_answers import wire_call
from ui.api import openai_wire as wire
from ui.api.chat_request import ChatRequest, RequestError
from ui.usecases import Docent
from ui.usecases.api_access import ApiCaller, ApiModel

log = logging.getLogger(__name__)
CHECKED = "\n\n---\nChecked against the documents: "


@dataclass
class Turn:
    """One request on its way: the model id, the question, and the answer's events so far."""

    request: ChatRequest
    model: ApiModel
    question: str
    head: list[AnswerEvent]
    rest: Iterator[AnswerEvent]
    schema: dict | None = None  # response_format's JSON schema, read once
    completion_id: str = field(default_factory=wire.new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

    def events(self) -> Iterator[AnswerEvent]:
        yield from self.head
        yield from self.rest


class ChatCompletions:
    def __init__(self, app: Docent):
        self.app = app
        self.public_url = app.settings.public_url or f"http://localhost:{app.settings.ui_port}"

    # --- before the response starts ----------------------------------------------------------
    def start(self, caller: ApiCaller, request: ChatRequest) -> Turn:
        """Resolve the model, start the answer and read it up to its first text (or its end).
        Raises ``UnknownModelError``, ``RequestError``, ``RateLimitedError``, ``LLM…Error``."""
        target = self.app.api_model(caller.principal, request.model)
        question, history = request.question_and_history()
        limit = self.app.settings.max_question_chars
        if len(question) > limit:  # the guard would refuse it too; an API client gets a 400 to act on
            raise RequestError(f"the question has {len(question)} characters; the limit is {limit}", "messages")
        schema = request.json_schema()  # a bad response_format fails before any work
        round_ = request.tool_round()
        if round_ is not None:
            if schema is not None:
                raise RequestError("response_format cannot be combined with tools", "response_format")
            events = self.app.ask_with_tools(caller.principal, target.collections, question, history, round_,
                                             max_tokens=request.answer_tokens, via=caller.channel)
        else:
            events = self.app.ask(caller.principal, target.collections, question, history,
                                  max_tokens=request.answer_tokens, via=caller.channel, strict=True)
        head: list[AnswerEvent] = []
        for event in events:
            head.append(event)
            if event.type in ("delta", "final"):
                break
        return Turn(request, target, question, head, events, schema)

    # --- one response object -----------------------------------------------------------------
    def respond(self, turn: Turn) -> dict:
        answer = final_answer(turn.events())
        if answer.mode == "tool_calls":
            message = {"role": "assistant", "content": answer.answer or None, "refusal": None,
                       "tool_calls": [wire_call(c) for c in answer.tool_calls]}
            return wire.completion(turn.completion_id, turn.model.id, message,
                                   wire.usage(turn.question, answer.passages, _written(answer)), "tool_calls",
                                   docent=_docent_extension(answer))
        content, message_extra = self._content(turn, answer)
        message = {"role": "assistant", "content": content, "refusal": None, **message_extra}
        return wire.completion(turn.completion_id, turn.model.id, message,
                               wire.usage(turn.question, answer.passages, answer.answer),
                               citations=wire.citation_records(answer, self._links(turn, answer)),
                               docent=_docent_extension(answer))

    def _links(self, turn: Turn, answer: Answer) -> wire.Links:
        return wire.Links.for_answer(self.public_url, answer, turn.model.names)

    def _content(self, turn: Turn, answer: Answer) -> tuple[str | None, dict]:
        links = self._links(turn, answer)
        schema = turn.schema
        if schema is not None:
            if answer.mode == "refused":  # OpenAI's structured outputs say no in ``refusal``
                return None, {"refusal": answer.answer}
            return self.app.answer_as_data(answer, schema), {}
        text = answer.answer + wire.sources_text(answer, links)
        return text, {"annotations": wire.annotations(answer, 0, links)}

    # --- a stream of chunks ------------------------------------------------------------------
    def stream(self, turn: Turn) -> Iterator[str]:
        """Server-sent events: ``data: {chunk}`` lines, then ``data: [DONE]``."""
        cid, created, model = turn.completion_id, turn.created, turn.model.id

        def sse(obj: dict) -> str:
            return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"

        def delta_chunk(delta: dict, finish: str | None = None, **extra) -> str:
            return sse(wire.chunk(cid, created, model, delta, finish, **extra))

        yield delta_chunk({"role": "assistant", "content": ""})
        as_data = turn.schema is not None
        shown = ""
        answer: Answer | None = None
        try:
            for event in turn.events():
                if event.type == "delta" and not as_data:
                    shown += event.text
                    yield delta_chunk({"content": event.text})
                elif event.type == "final":
                    answer = event.answer
            assert answer is not None  # the guard always ends with a final event
            tail = list(self._stream_tail(turn, answer, shown))
        except Exception as exc:  # noqa: BLE001 - the status line is sent: say it in the stream
            log.warning("streamed answer failed: %s", exc)
            yield sse(wire.error_body(_stream_error(exc), "server_error", "answer_failed"))
            yield "data: [DONE]\n\n"
            return
        for obj in tail:
            yield sse(obj)
        yield "data: [DONE]\n\n"

    def _stream_tail(self, turn: Turn, answer: Answer, shown: str) -> Iterator[dict]:
        cid, created, model = turn.completion_id, turn.created, turn.model.id
        links = self._links(turn, answer)
        if answer.mode == "tool_calls":
            calls = [{"index": i, **wire_call(c)} for i, c in enumerate(answer.tool_calls)]
            yield wire.chunk(cid, created, model, {"content": answer.answer or None, "tool_calls": calls})
            yield wire.chunk(cid, created, model, {}, "tool_calls", docent=_docent_extension(answer))
            if turn.request.include_usage:
                yield wire.chunk(cid, created, model, None,
                                 usage=wire.usage(turn.question, answer.passages, _written(answer)))
            return
        if turn.schema is not None:
            text, extra = self._content(turn, answer)
            yield wire.chunk(cid, created, model, {"content": text, **extra} if text is not None else extra)
        else:
            offset = len(shown)
            extra = ""
            if shown.strip() != answer.answer.strip():
                extra = (CHECKED if shown else "") + answer.answer
                offset += len(CHECKED) if shown else 0
            else:
                offset = shown.find(answer.answer.strip()) if answer.answer.strip() else 0
            extra += wire.sources_text(answer, links)
            delta = {"content": extra, "annotations": wire.annotations(answer, max(offset, 0), links)}
            yield wire.chunk(cid, created, model, delta)
            for event in wire.source_events(answer, links):
                yield wire.chunk(cid, created, model, None, event=event)
        counts = wire.usage(turn.question, answer.passages, answer.answer)
        yield wire.chunk(cid, created, model, {}, "stop",
                         citations=wire.citation_records(answer, links),
                         docent=_docent_extension(answer))
        if turn.request.include_usage:
            yield wire.chunk(cid, created, model, None, usage=counts)


def _written(answer: Answer) -> str:
    """What the model wrote, for the usage counts: the text and any calls' arguments."""
    return "".join([answer.answer, *(c.name + c.arguments for c in answer.tool_calls)])


def _docent_extension(answer: Answer) -> dict:
    """What only Docent knows: how the answer was made, and the checked text on its own."""
    return {"answer": answer.answer, "mode": answer.mode, "refused": answer.mode == "refused",
            "notice": answer.notice, "timings_ms": answer.to_json_dict()["timings"]}


def _stream_error(exc: BaseException) -> str:
    return getattr(exc, "user_message", None) or "The answer failed part way; please ask again."
