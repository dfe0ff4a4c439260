"""Answer and source markup: citations link to their source cards, unsupported sentences are
marked, and nothing a model or a document wrote can inject HTML."""

from __future__ import annotations

from assistant.answer_models import Answer, Citation, SentenceSupport
from retrieval.models import Passage
from ui.chat_session import copy_text, history
from ui.render import answer_html, highlight, location, source_card_html


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
    from ui.uploads import safe_name

    assert safe_name("../../etc/passwd.pdf") == "passwd.pdf"
    assert safe_name("C:\\Users\\me\\Report 2024 (final).docx") == "Report 2024 (final).docx"
    assert safe_name("rm -rf $(x);.pdf") == "rm -rf _(x)_.pdf"
    assert safe_name("..") == ""
