"""Admin · Feedback: thumbs up/down with comments, and their export as an evaluation set."""

from __future__ import annotations

import time

import streamlit as st

from ui import theme
from ui.render import answer_html, esc
from ui.views.common import context, fmt_time


def render() -> None:
    ctx = context(admin=True)
    st.title("Feedback")
    everything = ctx.app.list_feedback(ctx.principal)
    if not everything:
        theme.empty_state("No feedback yet",
                          "Thumbs up and down that users give on answers appear here, with their question, "
                          "the passages and the answer.")
        return
    ups = sum(r.rating == "up" for r in everything)
    a, b, c = st.columns(3)
    a.metric("Ratings", len(everything))
    b.metric("Helpful", ups)
    c.metric("Not helpful", len(everything) - ups)
    labels = {"all": "All", "up": ":material/thumb_up: Helpful", "down": ":material/thumb_down: Not helpful"}
    choice = st.segmented_control("Show", list(labels), format_func=labels.get, default="all", key="feedback_filter")
    rating = None if choice in (None, "all") else choice
    records = [r for r in everything if rating is None or r.rating == rating]
    st.dataframe([{"When": fmt_time(r.created_at), "User": r.user, "Rating": "helpful" if r.rating == "up" else "not helpful",
                   "Question": r.question, "Comment": r.comment or "—",
                   "Cited": ", ".join(dict.fromkeys(p.title for p in r.cited_passages)) or "—"} for r in records],
                 hide_index=True, width="stretch")
    for r in records[:50]:
        icon = ":material/thumb_up:" if r.rating == "up" else ":material/thumb_down:"
        with st.expander(esc(r.question[:90]), icon=icon):  # labels are Markdown: images would load
            st.markdown(answer_html(r.answer, f"fb{r.id}"), unsafe_allow_html=True)
            if r.comment:
                st.caption(f"Comment: {esc(r.comment)}")

    st.subheader("Export as evaluation set")
    st.caption("BEIR layout: corpus.jsonl (the passages shown), queries.jsonl, qrels/test.tsv (cited passages of "
               "helpful answers relevant, of unhelpful ones judged not relevant). Unzip and run "
               "`docent eval docent-feedback`.")
    st.download_button("Download evaluation set (.zip)", data=lambda: ctx.app.export_feedback_zip(ctx.principal),
                       file_name=f"docent-feedback-{time.strftime('%Y%m%d')}.zip", mime="application/zip",
                       icon=":material/download:", on_click="ignore")


if __name__ == "__main__":
    render()
