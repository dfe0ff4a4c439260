"""One round of an answer with a client's tools (how the request is built: ``tool_answers``).

The round ends one of three ways:

* the model asks for calls: a final answer of mode ``tool_calls``, for the client to run;
* ``tool_choice: "none"``, or the model asks only for calls already answered in this round
  (small models repeat a call instead of using its result): the ordinary grounded answer
  (``Answerer.answer_from``, streamed, the server's JSON schema where it has one), with the
  tool results as the first sources;
* the model writes text: grounded against the passages and the tool results; a refusal
  there, when tools have answered, is written again the ordinary way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from assistant.answer_models import Answer, AnswerEvent, ToolCall
from assistant.answerer import Answerer
from assistant.conversation import History
from assistant.grounding import ground
from assistant.tool_answers import ToolRound, reply_calls, request_fields, result_passage, tool_messages


def _key(call: ToolCall) -> tuple[str, str]:
    try:
        args = json.dumps(json.loads(call.arguments), sort_keys=True)
    except ValueError:
        args = call.arguments
    return call.name, args


class ToolAnswerer:
    def __init__(self, answerer: Answerer):
        if answerer.llm is None:
            raise ValueError("answers with tools need a language model")
        self.answerer = answerer

    def stream(self, question: str, history: History | None, round_: ToolRound) -> Iterator[AnswerEvent]:
        a, started = self.answerer, time.perf_counter()
        question = a.validate(question)
        results = round_.results()  # a malformed round fails before any work
        fields, forced = request_fields(round_, server_enforces_choice=a.llm.info().kind == "vllm")
        timings: dict[str, float] = {}
        documents = a.retrieve_for(question, history, timings, started)
        sources = [result_passage(r) for r in results]
        if round_.tool_choice == "none":
            yield from a.answer_from(question, sources + documents, timings, started)
            return
        reserve = a.llm.count_tokens(json.dumps([round_.tools, round_.turns], ensure_ascii=False))
        documents = a.fit_passages(question, documents, reserve=reserve) if documents else []
        reply = a.llm.chat_message(tool_messages(question, documents, round_), max_tokens=a.max_tokens,
                                   temperature=a.settings.llm_temperature, json_schema=forced, **fields)
        calls = reply_calls(reply, round_.tools)
        content = str(reply.get("content") or "")
        answered = {_key(r.call) for r in results}
        if calls and not all(_key(c) in answered for c in calls):
            yield AnswerEvent(type="passages", passages=documents)
            # Calls the server did not parse were the content itself: no text besides them.
            said = content.strip() if reply.get("tool_calls") else ""
            yield a.finish(Answer(answer=said, mode="tool_calls", tool_calls=calls, passages=documents),
                           timings, started)
            return
        answer = None if calls else ground(content, question, documents + sources, a.checker)
        if answer is None or (answer.mode == "refused" and sources):
            # A repeated call, or a refusal although tools have answered: write the answer the
            # ordinary way, tool results first (measured: the 0.5B model refused in the tool
            # request's format every time, and answered from the same results in this one).
            yield from a.answer_from(question, sources + documents, timings, started)
            return
        yield AnswerEvent(type="passages", passages=documents)
        yield a.finish(answer, timings, started)
