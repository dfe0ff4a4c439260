"""A client's tools in a grounded answer (the HTTP API's ``tools``, OpenAI function calling).

One round: the documents are retrieved for the question as for any answer; the model gets
them, the client's tool definitions and the tool calls and results of earlier rounds, and
either asks for more calls (returned to the client to run) or answers. An answer is grounded
like every other: a tool's result counts as one more numbered source ("Source [n]", after the
passages), so a claim taken from a tool is cited and checked against what the tool returned,
and a claim from nowhere is still dropped.

The client runs its tools, never Docent: a call is only text that goes back to it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.answer_models import ToolCall
from assistant.prompts import ANSWER_EXAMPLES, ANSWER_SYSTEM_TOOLS, neutralise, passages_and_question
from retrieval.models import Passage

TOOL_DOCUMENT = "tool:"  # document ids of tool results begin so: not a document of any collection


class ToolRoundError(ValueError):
    """The tool turns of a request do not fit together (a result for a call never made, …)."""


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    content: str


@dataclass(frozen=True)
class ToolRound:
    """What the client sent about tools: their definitions, ``tool_choice`` as OpenAI takes it,
    and the turns after the question (assistant messages with ``tool_calls``, then ``tool``
    messages with the results), in OpenAI's message shape."""

    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)

    def results(self) -> list[ToolResult]:
        calls: dict[str, ToolCall] = {}
        out: list[ToolResult] = []
        for i, turn in enumerate(self.turns):
            if turn.get("role") == "assistant":
                for raw in turn.get("tool_calls") or []:
                    call = parse_call(raw)
                    calls[call.id] = call
            elif turn.get("role") == "tool":
                call_id = turn.get("tool_call_id")
                if call_id not in calls:
                    raise ToolRoundError(f"messages: the tool result {i} answers no earlier tool call "
                                         f"(tool_call_id {call_id!r})")
                out.append(ToolResult(calls[call_id], str(turn.get("content") or "")))
        return out


def parse_call(raw: Any) -> ToolCall:
    """One entry of ``tool_calls`` (a model's reply or a client's message) as a ``ToolCall``."""
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not raw.get("id"):
        raise ToolRoundError(f"a tool call must have an id and a function name, got {raw!r:.160}")
    args = fn.get("arguments")
    return ToolCall(id=str(raw["id"]), name=fn["name"],
                    arguments=args if isinstance(args, str) else json.dumps(args or {}, ensure_ascii=False))


def wire_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def result_passage(result: ToolResult) -> Passage:
    """A tool's result as a source the grounding check can hold a claim against."""
    text = result.content
    return Passage(chunk_ids=[result.call.id], document_id=TOOL_DOCUMENT + result.call.id, collection="", path="",
                   title=f"Result of {result.call.name}", text=text, start=0, end=len(text), score=0.0)


def is_tool_source(document_id: str) -> bool:
    return document_id.startswith(TOOL_DOCUMENT)


def tool_messages(question: str, documents: Sequence[Passage], round_: ToolRound) -> list[dict[str, Any]]:
    """The request: the rules, the examples, the passages and the question, then the earlier
    rounds, each tool result labelled with the number it is cited by (after the passages)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": ANSWER_SYSTEM_TOOLS}, *ANSWER_EXAMPLES,
                                      {"role": "user", "content": passages_and_question(question, documents)}]
    n = len(documents)
    for turn in round_.turns:
        if turn.get("role") == "assistant":
            calls = [wire_call(parse_call(c)) for c in turn.get("tool_calls") or []]
            messages.append({"role": "assistant", "content": str(turn.get("content") or ""),
                             **({"tool_calls": calls} if calls else {})})
        elif turn.get("role") == "tool":
            n += 1
            content = neutralise(str(turn.get("content") or ""))
            messages.append({"role": "tool", "tool_call_id": turn.get("tool_call_id"),
                             "content": f"Source [{n}]:\n{content}"})
    return messages


def request_fields(round_: ToolRound, server_enforces_choice: bool) -> tuple[dict[str, Any], dict | None]:
    """The tool fields of the model request, and the JSON schema that forces a call where the
    server does not enforce ``tool_choice`` itself.

    vLLM decodes ``"required"`` and a named function under a grammar. llama-server (measured on
    this build) passes them to the template only: the 0.5B model then answered in prose or
    refused. There a forced call is asked for as JSON output (``response_format``: one object
    naming an allowed tool, its arguments under the tool's own parameter schema), which
    llama-server does enforce, and the reply is read by :func:`written_calls`."""
    names = [t["function"]["name"] for t in round_.tools]
    choice = round_.tool_choice
    allowed: list[str] | None = None
    if choice == "required":
        allowed = names
    elif isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if named not in names:
            raise ToolRoundError(f"tool_choice names {named!r}, which is not among the tools")
        allowed = [named]
    elif choice not in (None, "auto", "none"):
        raise ToolRoundError(f"tool_choice must be 'auto', 'none', 'required' or a function, got {choice!r}")
    fields: dict[str, Any] = {"tools": round_.tools}
    if allowed is None or server_enforces_choice:
        if choice is not None:
            fields["tool_choice"] = choice
        return fields, None
    params = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in round_.tools}
    options = [{"type": "object", "properties": {"name": {"const": n}, "arguments": params[n]},
                "required": ["name", "arguments"], "additionalProperties": False} for n in allowed]
    return fields, {"title": "tool_call", "anyOf": options}


def reply_calls(message: dict[str, Any], tools: Sequence[dict[str, Any]]) -> list[ToolCall]:
    """The calls in a model's reply; a call without an id (some servers) gets one.

    When the server parsed none, a reply that is nothing but calls written as text is read as
    calls: small models often wrap Qwen's ``{"name", "arguments"}`` in a code fence instead of
    ``<tool_call>`` tags, which llama-server's parser does not take (measured: Qwen2.5-Coder-0.5B
    did so every time). Only a reply that is entirely such calls, each naming one of ``tools``,
    counts; an answer that merely contains JSON stays an answer."""
    raws = message.get("tool_calls") or written_calls(str(message.get("content") or ""), tools)
    calls = []
    for i, raw in enumerate(raws):
        if isinstance(raw, dict) and not raw.get("id"):
            raw = {**raw, "id": f"call_{uuid.uuid4().hex[:24]}"}
        calls.append(parse_call(raw))
    return calls


_WRAPPER = re.compile(r"```(?:json)?|</?tool_call>")
_MARK_AFTER_CALL = re.compile(r"\}(?:\s*\[\d+\])+")


def written_calls(text: str, tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tool_calls`` entries for a reply that is only calls in Qwen's JSON form (one after
    another, bare, fenced or tagged), else []."""
    names = {t["function"]["name"] for t in tools}
    # Citation marks after a call ("{...} [1]"): the answer format leaking into a call.
    rest, decoder = _MARK_AFTER_CALL.sub("}", _WRAPPER.sub(" ", text)).strip(), json.JSONDecoder()
    calls = []
    while rest:
        try:
            value, end = decoder.raw_decode(rest)
        except ValueError:
            return []
        rest = rest[end:].lstrip()
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict) or item.get("name") not in names or set(item) - {"name", "arguments"}:
                return []
            args = item.get("arguments", {})
            if not isinstance(args, dict):
                return []
            calls.append({"type": "function", "function": {"name": item["name"],
                                                          "arguments": json.dumps(args, ensure_ascii=False)}})
    return calls
