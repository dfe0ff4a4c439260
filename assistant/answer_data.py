"""An answer as data: the checked answer's facts put into JSON a client's schema describes
(``response_format: {"type": "json_schema"}`` on the API).

The grounded answer is made first, as always (retrieval, citations, support check); this step
only re-writes that answer and the quotes it cites as JSON, constrained to the schema where the
server can constrain output, and the result is validated against the schema before anyone sees
it. Nothing here reads passages the answer did not cite.
"""

from __future__ import annotations

import json

import jsonschema

from assistant.answer_models import Answer
from assistant.llm_client import LLMClient
from assistant.prompts import DATA_SYSTEM, neutralise


class AnswerDataError(RuntimeError):
    """The model's JSON did not match the schema (the message is for the client)."""


def data_messages(answer: Answer, schema: dict) -> list[dict]:
    quotes = "\n".join(f"[{c.n}] {neutralise(c.quote)}" for c in answer.citations)
    user = (f"<schema>\n{json.dumps(schema, ensure_ascii=False)}\n</schema>\n<answer>\n{neutralise(answer.answer)}\n"
            f"</answer>\n<sources>\n{quotes}\n</sources>")
    return [{"role": "system", "content": DATA_SYSTEM}, {"role": "user", "content": user}]


def answer_as_data(llm: LLMClient, answer: Answer, schema: dict, max_tokens: int = 512) -> str:
    """The JSON text, valid against ``schema``; raises :class:`AnswerDataError` when it is not."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"response_format schema is not a valid JSON schema: {exc.message}") from None
    raw = llm.complete(data_messages(answer, schema), max_tokens=max_tokens, json_schema=schema, temperature=0.0)
    try:
        value = json.loads(raw)
        jsonschema.validate(value, schema)
    except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.message
        raise AnswerDataError(f"The model's output did not match the requested schema ({reason}).") from None
    return json.dumps(value, ensure_ascii=False)
