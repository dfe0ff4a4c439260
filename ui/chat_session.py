"""One browser session's conversation: turns, follow-up history, and feedback on answers.

A view helper: what it reads or records goes through the ``ui.usecases.Docent`` it is given."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from assistant.answer_models import Answer
from assistant.citations import strip_marks
from assistant.feedback import Rating
from retrieval.models import Passage, Principal
from ui.render import cited_numbers, location

HISTORY_TURNS = 3


@dataclass
class Turn:
    question: str
    answer: Answer
    collections: list[str]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    feedback_id: int | None = None
    rating: Rating | None = None
    # Page (and that page's text) of each cited quote, where it differs from the passage's.
    located: dict[int, tuple[int | None, str | None]] = field(default_factory=dict)

    @property
    def pages(self) -> dict[int, int | None]:
        return {n: page for n, (page, _) in self.located.items()}

    def source(self, n: int):
        """Passage ``n`` as the source panel shows it: at the page its quote is on."""
        p = self.answer.passages[n - 1]
        page, text = self.located.get(n, (p.page, None))
        if page == p.page and text is None:
            return p
        return p.model_copy(update={"page": page, "page_end": None, "text": text or p.text})

    def readable_sources(self, app, principal: Principal) -> list[tuple[int, Passage | None]]:
        """Each cited source as :meth:`source` gives it, or ``None`` where the user may no longer
        read its document (checked again at every showing: access can change between reruns)."""
        numbers = cited_numbers(self.answer)
        gone = app.unreadable_documents(principal, (self.answer.passages[n - 1] for n in numbers))
        return [(n, None if (p.collection, p.document_id) in gone else self.source(n))
                for n, p in ((n, self.answer.passages[n - 1]) for n in numbers)]


def history(turns: list[Turn]) -> list[dict[str, str]]:
    """The last turns as chat history for a follow-up; refusals carry no topic and are left out."""
    out: list[dict[str, str]] = []
    for t in turns[-HISTORY_TURNS:]:
        if t.answer.mode == "refused":
            continue
        out.append({"role": "user", "content": t.question})
        out.append({"role": "assistant", "content": strip_marks(t.answer.answer)})
    return out


def copy_text(answer: Answer, pages: dict[int, int | None] | None = None) -> str:
    """The answer as plain text with its sources listed, for the clipboard."""
    lines = [answer.answer.strip()]
    numbers = cited_numbers(answer)
    if numbers:
        lines.append("")
        lines.append("Sources:")
        for n in numbers:
            p = answer.passages[n - 1]
            page = (pages or {}).get(n, p.page)
            where = location(page, p.heading_path, p.page_end if page == p.page else None)
            lines.append(f"[{n}] {p.title}" + (f", {where}" if where else "") + f" ({p.path.rsplit('/', 1)[-1]})")
    return "\n".join(lines)


def rate(app, principal: Principal, turn: Turn, rating: Rating | None, comment: str | None = None) -> None:
    """Record or change the user's rating of one answer (one record per answer)."""
    if rating is None and comment is None:
        return
    if turn.feedback_id is None:
        if rating is None:
            return  # a comment without a rating has nothing to attach to yet
        turn.feedback_id = app.record_feedback(principal, turn.question, turn.answer, rating, comment or "",
                                               turn.collections)
    else:
        app.update_feedback(principal, turn.feedback_id, rating=rating, comment=comment)
    if rating is not None:
        turn.rating = rating
