"""Ask: a chat over the collections picked in the sidebar, answers streamed with clickable
citations, their sources beside them, copy and thumbs up/down on each answer."""

from __future__ import annotations

import logging

import streamlit as st

from ui import theme
from ui.chat_session import Turn, copy_text, history, rate
from ui.render import answer_html, citation_for, cited_numbers, esc, quotes_for, safe_html, source_card_html, text_html
from ui.usecases.errors import NO_LONGER_AVAILABLE
from ui.views.common import PageContext, context, plain_error
from ui.views.source_panel import action_row

TURNS = "turns"
log = logging.getLogger(__name__)


def _turns() -> list[Turn]:
    return st.session_state.setdefault(TURNS, [])


def _on_rating(ctx: PageContext, turn: Turn, key: str) -> None:
    value = st.session_state.get(key)
    rate(ctx.app, ctx.principal, turn, None if value is None else ("up" if value == 1 else "down"))


def _on_comment(ctx: PageContext, turn: Turn, key: str) -> None:
    rate(ctx.app, ctx.principal, turn, None, st.session_state.get(key, ""))
    st.toast("Thanks, your comment was saved.")


def render_answer(ctx: PageContext, turn: Turn) -> None:
    a = turn.answer
    if a.notice:
        st.info(a.notice, icon=":material/info:")
    if a.mode == "refused":
        st.markdown(text_html(a.answer), unsafe_allow_html=True)
        st.caption("Try other words, or pick more collections in the sidebar.")
    else:
        st.markdown(answer_html(a, turn.id), unsafe_allow_html=True)
    numbers = cited_numbers(a)
    if numbers:
        st.markdown(safe_html(f'<strong>Sources</strong> <span class="docent-muted">({len(numbers)})</span>'),
                    unsafe_allow_html=True)
        for n, passage in turn.readable_sources(ctx.app, ctx.principal):
            if passage is None:  # access revoked since: the cached text is not shown
                st.caption(f"[{n}] {NO_LONGER_AVAILABLE}")
                continue
            cit = citation_for(a, n)
            st.markdown(source_card_html(turn.id, n, passage, quotes_for(a, n), cit.supported if cit else True),
                        unsafe_allow_html=True)
            action_row(ctx, passage, quotes_for(a, n), f"{turn.id}-{n}")
    if a.mode == "refused":
        return
    copy_col, rate_col, comment_col = st.columns([1, 1, 4], vertical_alignment="center")
    with copy_col.popover("Copy", icon=":material/content_copy:"):
        st.code(copy_text(a, turn.pages), language=None, wrap_lines=True)
    key = f"fb-{turn.id}"
    with rate_col:
        st.feedback("thumbs", key=key, on_change=_on_rating, args=(ctx, turn, key))
    if turn.rating is not None:
        ckey = f"fbc-{turn.id}"
        comment_col.text_input("Comment", key=ckey, placeholder="Optional: what was good or wrong?",
                               label_visibility="collapsed", on_change=_on_comment, args=(ctx, turn, ckey))


def _ask(ctx: PageContext, question: str) -> None:
    turns = _turns()
    with st.chat_message("user"):
        st.markdown(esc(question))
    with st.chat_message("assistant"):
        status, body = st.empty(), st.empty()
        status.caption("Searching your documents…")
        text, answer = "", None
        try:
            for event in ctx.app.ask(ctx.principal, ctx.selected, question, history(turns)):
                if event.type == "passages":
                    status.caption(f"Found {len(event.passages)} passages. Writing the answer…"
                                   if event.passages else "Nothing found in the selected collections.")
                elif event.type == "delta":
                    text += event.text
                    body.markdown(text_html(text + " ▌"), unsafe_allow_html=True)  # inert while it streams
                elif event.type == "final":
                    answer = event.answer
        except Exception as exc:
            status.empty()
            body.error(plain_error(exc))
            return
        status.empty()
        body.empty()
        turn = Turn(question=question, answer=answer, collections=list(ctx.selected))
        try:
            turn.located = ctx.app.quote_locations(ctx.principal, answer)
        except Exception:  # a finer page is a nicety: the passage's own page still stands
            log.warning("could not locate quote pages", exc_info=True)
        turns.append(turn)
        render_answer(ctx, turn)


def render() -> None:
    ctx = context()
    head, new = st.columns([5, 1], vertical_alignment="bottom")
    head.title("Ask your documents")
    if new.button("New chat", icon=":material/add_comment:", width="stretch", disabled=not _turns()):
        st.session_state[TURNS] = []
        st.rerun()

    if not ctx.readable:
        theme.empty_state(
            "No collections yet",
            "Create one on the Collections page, then add documents on the Upload page or with "
            "`docent ingest FOLDER --collection NAME`." if ctx.principal.is_admin else
            "You do not have access to any collection yet. Ask your administrator to add you to a group "
            "that may read one.",
        )
        return
    if not ctx.selected:
        st.info("Pick at least one collection in the sidebar to ask about.", icon=":material/arrow_back:")

    turns = _turns()
    if not turns:
        docs = sum(v.documents for v in ctx.readable if v.rec.name in ctx.selected)
        if ctx.selected and not docs:
            theme.empty_state("These collections have no documents yet",
                              "Add PDF or DOCX files on the Upload page (if you may write to a collection), "
                              "or ask an administrator to ingest a folder.")
        else:
            st.caption(f"Ask a question about the {docs} document(s) in {', '.join(ctx.selected) or '—'}. "
                       "Every claim in the answer links to the passage and page it comes from.")
    for turn in turns:
        with st.chat_message("user"):
            st.markdown(esc(turn.question))
        with st.chat_message("assistant"):
            render_answer(ctx, turn)

    question = st.chat_input("Ask a question about your documents", disabled=not ctx.selected,
                             max_chars=ctx.app.settings.max_question_chars)
    if question:
        _ask(ctx, question)


if __name__ == "__main__":
    render()
