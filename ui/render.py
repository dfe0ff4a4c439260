"""HTML for answers and sources: pure functions from assistant/retrieval records to markup.

Everything a model or a document wrote is escaped before any tag of ours is added, so an
answer or a passage can never inject markup into the page. Streamlit parses what we hand to
``st.markdown`` as Markdown first, and a planted ``![x](https://host/?d=...)`` would make the
browser fetch while an answer streams, so two more rules hold for every string returned here:

* it is one CommonMark HTML block: it opens with a <div> and holds no line break (newlines
  become ``&#10;``), so no blank line can end the block and let document text be read as
  Markdown;
* it went through ``safe_html``, an nh3 (ammonia) safelist as the last step: only our own
  tags and classes, no <img>, and no link but our ``#src-…``/``#sum-…`` anchors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import nh3

from assistant.answer_models import Answer, Citation
from assistant.citations import cited_sentences
from retrieval.models import Passage

_MARK = re.compile(r"&#91;(\d{1,4})&#93;")  # a "[n]" citation mark, as esc() writes it
CONTEXT_CHARS = 360


# html.escape's own entities, kept; or an ASCII character that can start Markdown syntax: links and
# images, emphasis, code, headings, lists, tables, GFM autolinks (":", "." of www., "@"), and "$",
# which starts LaTeX in Streamlit ("$20 … $30" must stay money).
_ESCAPED_OR_MARKDOWN = re.compile(r"(&(?:amp|lt|gt|quot|#x27);)|([!#$%()*+\-.:=@\[\\\]^_`{|}~])")


def esc(text: str) -> str:
    """``text`` safe as HTML text or attribute and as Markdown: the one escape helper of the UI.
    Character references are read as literal text by Markdown, so nothing escaped here can
    become a link, an image or a heading in ``st.markdown``, ``st.caption`` or a widget label."""
    return _ESCAPED_OR_MARKDOWN.sub(lambda m: m.group(1) or f"&#{ord(m.group(2))};", html.escape(text, quote=True))


_OUR_ANCHOR = re.compile(r"(?:src|sum)-[A-Za-z0-9_-]{1,80}")
_CLASSES = {
    "div": {"docent-html", "docent-empty", "docent-doc", "src-card", "src-head", "src-body", "src-file"},
    "span": {"unsupported", "docent-muted", "src-n", "src-title", "src-loc", "src-kind", "src-warn"},
    "a": {"cite"},
}


def _attribute(tag: str, name: str, value: str) -> str | None:
    # Links may only jump to a source card on this page; ids only name one (no DOM clobbering).
    if name == "href":
        return value if value.startswith("#") and _OUR_ANCHOR.fullmatch(value[1:]) else None
    if name == "id":
        return value if _OUR_ANCHOR.fullmatch(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags={"a", "br", "div", "h4", "mark", "span", "strong"},
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "span": {"title"}, "div": {"id"}},
    allowed_classes=_CLASSES,
    attribute_filter=_attribute,
    url_schemes=set(),
    link_rel=None,
)


def safe_html(markup: str) -> str:
    """The last step before ``st.markdown(..., unsafe_allow_html=True)``: our safelist over the
    markup, then wrapped as one HTML block that no line of its text can end."""
    clean = _CLEANER.clean(markup)
    return '<div class="docent-html">' + clean.replace("\r", "&#13;").replace("\n", "&#10;") + "</div>"


def text_html(text: str) -> str:
    """Model or document text shown as it is (a streamed answer, a refusal)."""
    return safe_html(esc(text))


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
        tip = esc(f"{p.title} {location(p.page, p.heading_path)}".strip())
        return f'<a class="cite" href="#{anchor_id(turn_id, n)}" title="{tip}">[{n}]</a>'

    return _MARK.sub(link, escaped)


def answer_html(answer: Answer, turn_id: str) -> str:
    """The answer as safe HTML: [n] marks link to source cards; sentences whose
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
    return safe_html("".join(out))


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
    return safe_html(
        f'<div class="src-card" id="{anchor_id(turn_id, n)}">'
        f'<div class="src-head"><span class="src-n">{n}</span>'
        f'<span class="src-title">{esc(passage.title or name)}</span>'
        f'<span class="src-loc">{esc(loc)}</span>{table}{warn}</div>'
        f'<div class="src-body">{highlight(passage.text, quotes)}</div>'
        f'<div class="src-file">{esc(name)}</div></div>'
    )


def passage_html(passage: Passage, quotes: Sequence[str]) -> str:
    """The passage in the source panel, its quotes highlighted."""
    return safe_html(f'<div class="src-card"><div class="src-body">{highlight(passage.text, quotes)}</div></div>')


def summary_html(text: str, anchor_prefix: str, labels: dict[int, str]) -> str:
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        if n not in labels:
            return m.group(0)
        return f'<a class="cite" href="#{anchor_prefix}-{n}" title="{esc(labels[n])}">[{n}]</a>'

    return safe_html(_MARK.sub(link, esc(text)))


def summary_card_html(anchor_prefix: str, n: int, label: str, text: str, quote: str, supported: bool = True) -> str:
    """A section the summary cites, its quote highlighted; ``[n]`` in the summary jumps here."""
    warn = "" if supported else '<span class="src-warn">⚠ weak support</span>'
    return safe_html(
        f'<div class="src-card" id="{anchor_prefix}-{n}"><div class="src-head"><span class="src-n">{n}</span>'
        f'<span class="src-title">{esc(label)}</span>{warn}</div>'
        f'<div class="src-body">{highlight(text, [quote])}</div></div>'
    )


def document_heading_html(title: str, path: str) -> str:
    """Title and path of a document on the admin page: both come from the file (PDF metadata)."""
    return safe_html(f'<div class="docent-doc"><strong>{esc(title)}</strong><br>'
                     f'<span class="docent-muted">{esc(path)}</span></div>')
