"""HTML for answers and sources: pure functions from assistant/retrieval records to markup.

Everything a model or a document wrote is escaped before any tag of ours is added, so an
answer or a passage can never inject markup into the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from assistant.answer_models import Answer, Citation
from assistant.citations import cited_sentences
from retrieval.models import Passage

_MARK = re.compile(r"\[(\d{1,4})\]")
CONTEXT_CHARS = 360


def esc(text: str) -> str:
    # "$" would start LaTeX in Streamlit's markdown: "$20 … $30" must stay money.
    return html.escape(text, quote=False).replace("$", "&#36;")


def location(page: int | None, heading_path: Sequence[str] = (), page_end: int | None = None) -> str:
    if page is not None:
        return f"pp. {page}–{page_end}" if page_end and page_end != page else f"p. {page}"
    return " › ".join(heading_path)


def anchor_id(turn_id: str, n: int) -> str:
    return f"src-{turn_id}-{n}"


def _marks_to_links(escaped: str, turn_id: str, passages: Sequence[Passage]) -> str:
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(passages):
            return m.group(0)
        p = passages[n - 1]
        tip = esc(f"{p.title} {location(p.page, p.heading_path)}".strip()).replace('"', "&quot;")
        return f'<a class="cite" href="#{anchor_id(turn_id, n)}" title="{tip}">[{n}]</a>'

    return _MARK.sub(link, escaped)


def answer_html(answer: Answer, turn_id: str) -> str:
    """The answer as markdown with inline HTML: [n] marks link to source cards; sentences whose
    citations do not support them are marked ⚠ and muted."""
    text = answer.answer
    supported = {s.text: s.supported for s in answer.sentences}
    checked = answer.mode == "generated"
    out: list[str] = []
    pos = 0
    for sentence in cited_sentences(text) if checked else []:
        out.append(_marks_to_links(esc(text[pos:sentence.start]), turn_id, answer.passages))
        body = _marks_to_links(esc(text[sentence.start:sentence.end]), turn_id, answer.passages)
        if supported.get(sentence.text, True) is False:
            tip = "Not supported by the cited passages: check the sources before relying on it."
            body = "\n".join(
                f'<span class="unsupported" title="{tip}">⚠ {line}</span>' if line.strip() else line
                for line in body.split("\n")
            )
        out.append(body)
        pos = sentence.end
    out.append(_marks_to_links(esc(text[pos:]), turn_id, answer.passages))
    return "".join(out)


def highlight(text: str, quotes: Sequence[str], context: int = CONTEXT_CHARS) -> str:
    """``text`` escaped, each quote inside <mark>, trimmed to the context around the quotes."""
    spans: list[tuple[int, int]] = []
    for q in quotes:
        q = q.strip()
        i = text.find(q) if q else -1
        if i >= 0:
            spans.append((i, i + len(q)))
    spans.sort()
    if not spans:
        cut = text[: 2 * context]
        return esc(cut) + ("…" if len(text) > len(cut) else "")
    lo, hi = max(0, spans[0][0] - context), min(len(text), spans[-1][1] + context)
    parts, pos = [], lo
    for a, b in spans:
        if a < pos:
            continue
        parts.append(esc(text[pos:a]))
        parts.append(f"<mark>{esc(text[a:b])}</mark>")
        pos = b
    parts.append(esc(text[pos:hi]))
    return ("…" if lo > 0 else "") + "".join(parts) + ("…" if hi < len(text) else "")


def cited_numbers(answer: Answer) -> list[int]:
    return sorted({c.n for c in answer.citations if 1 <= c.n <= len(answer.passages)})


def quotes_for(answer: Answer, n: int) -> list[str]:
    return [c.quote for c in answer.citations if c.n == n]


def citation_for(answer: Answer, n: int) -> Citation | None:
    return next((c for c in answer.citations if c.n == n), None)


def source_card_html(turn_id: str, n: int, passage: Passage, quotes: Sequence[str], supported: bool = True) -> str:
    loc = location(passage.page, passage.heading_path, passage.page_end)
    name = passage.path.rsplit("/", 1)[-1]
    warn = "" if supported else '<span class="src-warn" title="The quote only partly supports the claim">⚠ weak support</span>'
    table = '<span class="src-kind">table</span>' if passage.kind == "table" else ""
    return (
        f'<div class="src-card" id="{anchor_id(turn_id, n)}">'
        f'<div class="src-head"><span class="src-n">{n}</span>'
        f'<span class="src-title">{esc(passage.title or name)}</span>'
        f'<span class="src-loc">{esc(loc)}</span>{table}{warn}</div>'
        f'<div class="src-body">{highlight(passage.text, quotes)}</div>'
        f'<div class="src-file">{esc(name)}</div></div>'
    )


def summary_html(text: str, anchor_prefix: str, labels: dict[int, str]) -> str:
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        if n not in labels:
            return m.group(0)
        return f'<a class="cite" href="#{anchor_prefix}-{n}" title="{esc(labels[n])}">[{n}]</a>'

    return _MARK.sub(link, esc(text))
