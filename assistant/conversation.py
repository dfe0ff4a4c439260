"""Follow-up questions become standalone search queries.

"And for contractors?" retrieves nothing useful on its own; the search needs "What is the
notice period for contractors?". With an LLM a short rewrite prompt does it; without one (or
when the rewrite looks wrong) the previous question is simply put in front of the follow-up,
which keeps its key terms in the query.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from assistant import lexical
from assistant.prompts import rewrite_messages

if TYPE_CHECKING:
    from assistant.llm_client import LLMClient

log = logging.getLogger(__name__)

History = Sequence[Mapping[str, str]]  # OpenAI-style turns: {"role": "user"|"assistant", "content": ...}

_PREFIX = re.compile(
    r"^\s*(?:standalone\s+)?(?:search\s+)?(?:query|question|rewritten)\s*[:：]\s*|^\s*(?:查询|问题)\s*[:：]\s*",
    re.I,
)
_MAX_TURNS = 6
_MAX_QUERY_CHARS = 500


def validate_history(history: History | None) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    for i, turn in enumerate(history or []):
        role, content = turn.get("role"), turn.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError(
                f"history[{i}] must be {{'role': 'user'|'assistant', 'content': str}}, got {dict(turn)!r}"
            )
        turns.append({"role": role, "content": content})
    return turns


def heuristic_query(history: History, follow_up: str) -> str:
    """Previous user question + the follow-up (the previous one's terms carry the topic)."""
    previous = next((t["content"] for t in reversed(history) if t.get("role") == "user"), "")
    previous = previous.strip()[:300]
    follow_up = follow_up.strip()
    return f"{previous} {follow_up}".strip() if previous else follow_up


def standalone_query(
    follow_up: str, history: History | None, llm: LLMClient | None = None, *, max_tokens: int = 48
) -> str:
    """The query to search with. No history: the question itself."""
    turns = validate_history(history)
    if not turns:
        return follow_up.strip()
    fallback = heuristic_query(turns, follow_up)
    if llm is None:
        return fallback
    from assistant.errors import LLMServerError, LLMTimeoutError, LLMUnavailableError

    try:
        raw = llm.complete(
            rewrite_messages(turns[-_MAX_TURNS:], follow_up), max_tokens=max_tokens, temperature=0.0
        )
    except (LLMUnavailableError, LLMTimeoutError, LLMServerError) as exc:
        # The answer call right after will meet the same error and report it; the query
        # rewrite is only a refinement, so it degrades to the heuristic.
        log.warning("query rewrite failed, using heuristic: %s", exc)
        return fallback
    query = clean_rewrite(raw)
    if not acceptable_rewrite(query, follow_up, fallback):
        # Never the text itself: user input stays out of ordinary logs.
        log.info("query rewrite rejected (%d chars), using heuristic", len(query))
        return fallback
    return query


def clean_rewrite(raw: str) -> str:
    line = next((ln for ln in raw.strip().splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip()
    return line.strip("\"'“”「」`").strip()


def acceptable_rewrite(query: str, follow_up: str, fallback: str) -> bool:
    """Reject what a small model gets wrong: empty output, an essay instead of a query, a
    query in another language than the user's (it would retrieve the wrong-language text), or
    one that lost the follow-up's own terms."""
    if not query or len(query) > min(_MAX_QUERY_CHARS, 3 * len(fallback) + 50):
        return False
    if lexical.is_cjk(query) != lexical.is_cjk(follow_up):
        return False
    # Small models "resolve" a follow-up by dropping it ("Can I carry them over?" became
    # "annual leave"): the query must keep at least half of what the follow-up asks.
    asked = lexical.term_set(follow_up)
    said = lexical.term_set(query)
    if asked and len(asked & said) * 2 < len(asked):
        return False
    # ... and one that merely repeats the follow-up resolved nothing: the heuristic does better.
    return bool(said - asked)
