"""Summarize: pick a document you may read, get a streamed summary whose claims cite sections."""

from __future__ import annotations

import streamlit as st

from assistant.answer_models import SourceSection, Summary
from retrieval.models import Passage
from ui import theme
from ui.render import summary_card_html, summary_html, text_html
from ui.usecases import DocumentInfo
from ui.views.common import PageContext, context, plain_error
from ui.views.source_panel import action_row

SUMMARIES = "summaries"


def _label(doc: DocumentInfo, names: dict[str, str]) -> str:
    name = doc.path.rsplit("/", 1)[-1]
    title = doc.title if doc.title and doc.title != name.rsplit(".", 1)[0] else name
    pages = f" · {doc.pages} p." if doc.pages else ""
    return f"{title} — {name} ({names.get(doc.collection, doc.collection)}){pages}"


def _section_passage(doc: DocumentInfo, s: SourceSection) -> Passage:
    return Passage(chunk_ids=[], document_id=doc.document_id, collection=doc.collection, path=doc.path,
                   title=doc.title, text=s.text, start=s.start, end=s.end, page=s.page,
                   heading_path=list(s.heading_path), score=0.0)


def _show(ctx: PageContext, doc: DocumentInfo, sections: list[SourceSection], summary: Summary) -> None:
    prefix = f"sum-{doc.document_id[:8]}"
    labels = {c.n: c.label for c in summary.citations}
    st.markdown(summary_html(summary.text, prefix, labels), unsafe_allow_html=True)
    st.caption(f"{summary.path} · {summary.llm_calls} model call(s) · "
               f"{summary.timings.get('total_ms', 0) / 1000:.1f} s")
    if not summary.citations:
        return
    st.markdown("**Sources**")
    for c in summary.citations:
        s = sections[c.n - 1]
        st.markdown(summary_card_html(prefix, c.n, c.label, s.text, c.quote, c.supported), unsafe_allow_html=True)
        action_row(ctx, _section_passage(doc, s), [c.quote], f"{prefix}-{c.n}")


def render() -> None:
    ctx = context()
    st.title("Summarize a document")
    if not ctx.readable:
        theme.empty_state("Nothing to summarize yet", "You do not have access to any collection yet.")
        return
    names = {v.rec.id: v.rec.name for v in ctx.readable}
    docs = ctx.app.documents(ctx.principal, ctx.selected or ctx.readable_names)
    if not docs:
        theme.empty_state("No documents in the selected collections",
                          "Pick other collections in the sidebar, or add documents on the Upload page.")
        return
    by_id = {d.document_id: d for d in docs}
    picked = st.selectbox("Document", list(by_id), index=None, format_func=lambda i: _label(by_id[i], names),
                          placeholder=f"Search {len(docs)} documents by title or file name…", key="summary_doc")
    doc = by_id.get(picked) if picked else None
    if doc is None:
        st.caption("The summary cites the pages or sections each statement comes from.")
        return
    store: dict = st.session_state.setdefault(SUMMARIES, {})
    settings = ctx.app.settings
    has_llm = bool(settings.llm_base_url) or settings.local_llm != "none"
    if not has_llm:
        st.info("Summaries are written by the language model, and none is configured. An administrator can "
                "set DOCENT_LLM_BASE_URL (vLLM) or DOCENT_LOCAL_LLM to enable them.", icon=":material/info:")
    if st.button("Summarize", type="primary", icon=":material/summarize:", disabled=not has_llm):
        status, body = st.empty(), st.empty()
        text = ""
        try:
            sections = ctx.app.summary_sections(ctx.principal, doc.collection, doc.document_id)
            status.caption(f"Reading {len(sections)} section(s)…")
            for event in ctx.app.summarize(ctx.principal, doc.collection, doc.document_id):
                if event.type == "stage":
                    status.caption(event.text)
                elif event.type == "delta":
                    text += event.text
                    body.markdown(text_html(text + " ▌"), unsafe_allow_html=True)  # inert while it streams
                elif event.type == "final":
                    store[doc.document_id] = (sections, event.summary)
        except Exception as exc:
            status.empty()
            body.error(plain_error(exc))
            return
        status.empty()
        body.empty()
    if doc.document_id in store:
        sections, summary = store[doc.document_id]
        _show(ctx, doc, sections, summary)


if __name__ == "__main__":
    render()
