"""Function calling through the API, as an agent uses it: the client's tools go to the model, its
calls come back in OpenAI's shape (``message.tool_calls`` / ``delta.tool_calls``, finish reason
``tool_calls``), the client runs them and sends the results, and the answer is grounded on the
documents and those results, each cited.

Real parts: the ``docent api`` server on a loopback port, the embedded index, the real local
llama-server (Qwen2.5-Coder-0.5B, its own chat template and tool-call parser) and the official
``openai`` client and LangChain's ``bind_tools``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.audit import AuditLog

from .api_site import api_site
from .test_api import sse_chunks

TICKET_TOOL = {"type": "function", "function": {
    "name": "create_ticket",
    "description": "Open a ticket for the HR team.",
    "parameters": {"type": "object", "properties": {"summary": {"type": "string"}},
                   "required": ["summary"]}}}
STATUS_TOOL = {"type": "function", "function": {
    "name": "ticket_status",
    "description": "Look up the status of an HR ticket by its number.",
    "parameters": {"type": "object", "properties": {"ticket": {"type": "string"}}, "required": ["ticket"]}}}
ASK_TICKET = "Open an HR ticket asking to raise the daily meal allowance."


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder, llama_server):
    with api_site(tmp_path_factory.mktemp("api-tools"), embedder, llama_server) as running:
        yield running


def ticket_round(site, **kw):
    return site.client(site.alice).chat.completions.create(
        model="docent/HR", messages=[{"role": "user", "content": ASK_TICKET}], tools=[TICKET_TOOL],
        tool_choice="required", **kw)


def test_tool_call_comes_back_in_the_openai_shape(site):
    done = ticket_round(site)
    choice = done.choices[0]
    print("\nCALLS:", choice.message.tool_calls)
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "create_ticket" and call.id
    assert isinstance(json.loads(call.function.arguments)["summary"], str)
    assert done.model_extra["docent"]["mode"] == "tool_calls" and "citations" not in done.model_extra
    assert done.usage.completion_tokens > 0  # the call's arguments are what the model wrote
    lines = AuditLog.from_settings(site.app.settings).path_for().read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["outcome"] == "tool_calls" and ASK_TICKET not in lines[-1]


def test_tool_result_is_a_cited_source_of_the_answer(site):
    client = site.client(site.alice)
    ask = {"role": "user", "content": "What is the status of HR ticket HR-4711?"}
    first = client.chat.completions.create(model="docent/HR", messages=[ask], tools=[STATUS_TOOL],
                                           tool_choice="required")
    (call,) = first.choices[0].message.tool_calls
    assert call.function.name == "ticket_status"
    result = "Ticket HR-4711 was approved on 3 May."
    # tool_choice "none": answer now (the 0.5B model cannot be trusted to stop calling on "auto").
    done = client.chat.completions.create(model="docent/HR", tools=[STATUS_TOOL], tool_choice="none", messages=[
        ask, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": result}])
    text = done.choices[0].message.content
    print("\nANSWER:", text)
    assert done.choices[0].finish_reason == "stop" and "approved" in text
    tool_cites = [c for c in done.model_extra["citations"] if c["source"] == "tool"]
    assert tool_cites and tool_cites[0]["url"] is None and tool_cites[0]["quote"] in result
    assert f"[{tool_cites[0]['n']}] Result of ticket_status" in text  # the Sources list names it
    assert all(a.url_citation.url for a in done.choices[0].message.annotations or [])


def test_streamed_tool_call_reassembles_with_the_openai_client(site):
    with httpx.stream("POST", site.base + "/v1/chat/completions", timeout=120,
                      headers={"Authorization": f"Bearer {site.alice}"},
                      json={"model": "docent/HR", "stream": True, "tools": [TICKET_TOOL], "tool_choice": "required",
                            "messages": [{"role": "user", "content": ASK_TICKET}]}) as r:
        assert r.status_code == 200
        chunks = sse_chunks(r)
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0] for c in chunks[:-1] if c["choices"]]
    calls = [d["delta"]["tool_calls"] for d in deltas if d["delta"].get("tool_calls")]
    assert len(calls) == 1 and calls[0][0]["index"] == 0 and calls[0][0]["function"]["name"] == "create_ticket"
    assert [d["finish_reason"] for d in deltas if d["finish_reason"]] == ["tool_calls"]
    stream = ticket_round(site, stream=True)
    names = [tc.function.name for chunk in stream if chunk.choices for tc in chunk.choices[0].delta.tool_calls or []]
    assert names == ["create_ticket"]


def test_langchain_bind_tools(site):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=site.base + "/v1", api_key=site.alice, model="docent/HR", max_retries=0, timeout=120)
    reply = llm.bind_tools([TICKET_TOOL], tool_choice="required").invoke(ASK_TICKET)
    assert [c["name"] for c in reply.tool_calls] == ["create_ticket"]


def test_tool_rounds_that_do_not_fit_together_are_rejected(site):
    ask = {"role": "user", "content": ASK_TICKET}
    result = {"role": "tool", "tool_call_id": "call_nowhere", "content": "done"}
    cases = [
        ({"model": "docent/HR", "tools": [TICKET_TOOL], "messages": [ask, result]}, 400, "tool call"),
        ({"model": "docent/HR", "messages": [ask, result]}, 400, "role 'user'"),
        ({"model": "docent/HR", "tools": [{"type": "function"}], "messages": [ask]}, 400, "each tool must be"),
        ({"model": "docent/HR", "tools": [TICKET_TOOL], "messages": [ask],
          "response_format": {"type": "json_object"}}, 400, "response_format"),
        ({"model": "docent/Finance", "tools": [TICKET_TOOL], "messages": [ask]}, 404, "docent/Finance"),
    ]
    for body, status, said in cases:
        r = site.post("/v1/chat/completions", site.alice, json=body)
        assert r.status_code == status and said in r.json()["error"]["message"], (body, r.text)
