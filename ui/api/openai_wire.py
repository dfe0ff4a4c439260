"""Docent's answers in the OpenAI Chat Completions wire format: response objects, stream
chunks, errors, and citations three ways so every kind of client shows them:

* ``message.annotations`` / ``delta.annotations``: OpenAI's ``url_citation`` entries (nested
  ``{"type": "url_citation", "url_citation": {url, title, start_index, end_index}}``), one per
  cited span; the url opens the document at its page in Docent for a signed-in user. Open
  WebUI turns streamed ``delta.annotations`` into source chips.
* ``citations``: the full provenance (document, title, path, page or heading path, quote,
  offsets, supported), the extension field RAG back ends use; on the final chunk when streaming.
* a short "Sources" list appended to the text, for clients that ignore both.

Built by hand because it is a format, not a protocol client: the ``openai`` package's types
describe these objects but cannot produce a server's stream.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from assistant.answer_models import Answer, Citation
from assistant.token_estimate import estimate_tokens
from assistant.tool_answers import is_tool_source
from retrieval.models import Passage
from ui.render import location

_MARK_GROUP = re.compile(r"(?:\s*\[\d+\])+")
_MARK = re.compile(r"\[(\d+)\]")


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def source_url(public_url: str, collection: str, document_id: str, page: int | None) -> str:
    """Docent's page for one source, opened at ``page``; the app checks access again there."""
    query = {"c": collection, "d": document_id}
    if page is not None:
        query["p"] = str(page)
    return f"{public_url.rstrip('/')}/source?{urlencode(query)}"


@dataclass(frozen=True)
class Links:
    """Where an answer's sources live: the app's address, each cited document's collection id
    (from the answer's passages) and the collections' names (the model's)."""

    public_url: str
    collection_of: dict[str, str]
    names: dict[str, str]

    @classmethod
    def for_answer(cls, public_url: str, answer: Answer, names: dict[str, str]) -> "Links":
        return cls(public_url, {p.document_id: p.collection for p in answer.passages}, names)

    def url(self, c: Citation) -> str | None:
        """None for a client tool's result: it lives with the client, not in Docent."""
        if is_tool_source(c.document_id):
            return None
        return source_url(self.public_url, self.collection_of.get(c.document_id, ""), c.document_id, c.page)

    def collection_name(self, document_id: str) -> str:
        cid = self.collection_of.get(document_id, "")
        return self.names.get(cid, cid)


def citation_title(c: Citation) -> str:
    where = location(c.page, c.heading_path)
    return f"{c.title}, {where}" if where else c.title


def marked_spans(text: str) -> list[tuple[int, int, list[int]]]:
    """(start, end, [n, ...]) of each stretch of text with the marks that close it: a sentence
    and its ``[1][2]``. ``end`` is after the last mark."""
    spans: list[tuple[int, int, list[int]]] = []
    begin = 0
    for m in _MARK_GROUP.finditer(text):
        start = begin
        while start < m.start() and text[start].isspace():
            start += 1
        numbers = [int(n) for n in _MARK.findall(m.group(0))]
        if start < m.start():
            spans.append((start, m.end(), numbers))
        begin = m.end()
    return spans


def annotations(answer: Answer, offset: int, links: Links) -> list[dict]:
    """``url_citation`` entries for the answer text placed at ``offset`` in the message content."""
    by_n = {c.n: c for c in answer.citations}
    out: list[dict] = []
    for start, end, numbers in marked_spans(answer.answer):
        for n in numbers:
            c = by_n.get(n)
            if c is not None and links.url(c) is not None:
                out.append({"type": "url_citation", "url_citation": {
                    "url": links.url(c), "title": citation_title(c),
                    "start_index": offset + start, "end_index": offset + end}})
    return out


def citation_records(answer: Answer, links: Links) -> list[dict]:
    """The ``citations`` extension: ``Answer.to_json_dict``'s citations with collection and url."""
    records = answer.to_json_dict()["citations"]
    for record, c in zip(records, answer.citations):
        tool = is_tool_source(c.document_id)
        record["collection"] = None if tool else links.collection_name(c.document_id)
        record["url"] = links.url(c)
        record["source"] = "tool" if tool else "document"
    return records


def sources_text(answer: Answer, links: Links) -> str:
    if not answer.citations:
        return ""
    lines = [f"[{c.n}] {citation_title(c)}" + (f" — {url}" if (url := links.url(c)) else "") for c in answer.citations]
    return "\n\nSources:\n" + "\n".join(lines)


def source_events(answer: Answer, links: Links) -> list[dict]:
    """One Open WebUI ``source`` event per citation (its chat view reads a chunk's top-level
    ``event``; other clients ignore the unknown key)."""
    events = []
    for c in answer.citations:
        url, name = links.url(c), f"[{c.n}] {citation_title(c)}"
        if url is None:
            continue
        events.append({"type": "source", "data": {"source": {"name": name, "url": url}, "document": [c.quote],
                                                  "metadata": [{"source": url, "name": name}]}})
    return events


def usage(question: str, passages: list[Passage], completion: str) -> dict[str, int]:
    """Estimated counts (question and passages in, text out; the chat template's own tokens are
    not counted): the answer path makes several model calls, none of which is "the" prompt."""
    prompt = estimate_tokens(question) + sum(estimate_tokens(p.text) for p in passages)
    done = estimate_tokens(completion) if completion else 0
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def chunk(completion_id: str, created: int, model: str, delta: dict | None = None,
          finish_reason: str | None = None, **extra: Any) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": choices, **extra}


def completion(completion_id: str, model: str, message: dict, usage_counts: dict, finish_reason: str = "stop",
               **extra: Any) -> dict:
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage_counts, **extra}


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
