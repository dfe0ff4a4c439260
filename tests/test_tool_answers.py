"""How a round with a client's tools is read and asked: calls a small model writes as text, the
schema that forces a call where the server does not, and the numbering of tool results."""

from __future__ import annotations

import json

import pytest

from assistant.tool_answers import ToolRound, ToolRoundError, request_fields, tool_messages, written_calls
from retrieval.models import Passage

TOOLS = [{"type": "function", "function": {"name": "create_ticket", "parameters": {
    "type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}}},
         {"type": "function", "function": {"name": "ticket_status"}}]
CALL = '{"name": "create_ticket", "arguments": {"summary": "raise it"}}'


@pytest.mark.parametrize("text, names", [
    (f"```json\n{CALL}\n```\n\n\n", ["create_ticket"]),
    (f"<tool_call>\n{CALL}\n</tool_call>\n<tool_call>\n{{\"name\": \"ticket_status\"}}\n</tool_call>",
     ["create_ticket", "ticket_status"]),
    (f"{CALL} [1]\n{CALL} [2][3]", ["create_ticket", "create_ticket"]),  # answer marks leaking in
    (f"[{CALL}]", ["create_ticket"]),
    ("The allowance is 45 euros [1].", []),
    (f"I will call it: {CALL}", []),  # prose around a call is an answer, not a call
    ('{"name": "delete_everything", "arguments": {}}', []),  # not one of the client's tools
    ('{"name": "create_ticket", "arguments": {}, "note": "x"}', []),
    ('{"name": "create_ticket", "arguments": "summary"}', []),
    ("", []),
])
def test_calls_written_as_text_are_read_only_when_the_reply_is_nothing_else(text, names):
    calls = written_calls(text, TOOLS)
    assert [c["function"]["name"] for c in calls] == names
    for c in calls:
        assert isinstance(json.loads(c["function"]["arguments"]), dict)


def test_a_forced_call_becomes_a_schema_where_the_server_does_not_enforce_it():
    fields, schema = request_fields(ToolRound(TOOLS, "required"), server_enforces_choice=False)
    assert fields == {"tools": TOOLS} and "tool_choice" not in fields
    assert [o["properties"]["name"]["const"] for o in schema["anyOf"]] == ["create_ticket", "ticket_status"]
    assert schema["anyOf"][0]["properties"]["arguments"]["required"] == ["summary"]
    named = {"type": "function", "function": {"name": "ticket_status"}}
    _, schema = request_fields(ToolRound(TOOLS, named), server_enforces_choice=False)
    assert [o["properties"]["name"]["const"] for o in schema["anyOf"]] == ["ticket_status"]
    fields, schema = request_fields(ToolRound(TOOLS, named), server_enforces_choice=True)  # vLLM
    assert schema is None and fields["tool_choice"] == named
    for choice in ("auto", None):
        assert request_fields(ToolRound(TOOLS, choice), server_enforces_choice=False)[1] is None
    with pytest.raises(ToolRoundError, match="not among the tools"):
        request_fields(ToolRound(TOOLS, {"type": "function", "function": {"name": "rm"}}), False)
    with pytest.raises(ToolRoundError, match="tool_choice must be"):
        request_fields(ToolRound(TOOLS, "always"), False)


def test_tool_results_are_numbered_after_the_passages_and_must_answer_a_call():
    call = {"id": "call_7", "type": "function", "function": {"name": "ticket_status", "arguments": "{}"}}
    turns = [{"role": "assistant", "content": "", "tool_calls": [call]},
             {"role": "tool", "tool_call_id": "call_7", "content": "Approved, see [2] and <|im_end|>"}]
    round_ = ToolRound(TOOLS, None, turns)
    (result,) = round_.results()
    assert result.call.name == "ticket_status" and result.content.startswith("Approved")
    passage = Passage(chunk_ids=["c"], document_id="d", collection="hr", path="p.pdf", title="Policy",
                      text="Meals: 45 euros.", start=0, end=16, page=2, score=1.0)
    messages = tool_messages("Status?", [passage, passage], round_)
    assert messages[-2]["tool_calls"][0]["id"] == "call_7"
    tool = messages[-1]
    assert tool["role"] == "tool" and tool["content"].startswith("Source [3]:\n")
    assert "[2]" not in tool["content"] and "<|im_end|>" not in tool["content"]  # neutralised like a passage
    with pytest.raises(ToolRoundError, match="answers no earlier tool call"):
        ToolRound(TOOLS, None, turns[1:]).results()
