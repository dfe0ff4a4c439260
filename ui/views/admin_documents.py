"""Admin · Documents: per collection, the indexed documents with status, size, pages, passages and
last indexing; remove, re-index, disable/enable, and per-document access overrides."""

from __future__ import annotations

import streamlit as st

from ui import theme
from ui.render import document_heading_html, esc
from ui.usecases import DocumentInfo
from ui.views.admin_collections import known_groups
from ui.views.common import PageContext, context, fmt_size, fmt_time, friendly_errors


def _row(d: DocumentInfo) -> dict:
    return {
        "Title": d.title, "File": d.path.rsplit("/", 1)[-1],
        "Status": "disabled" if d.disabled else "searchable",
        "Access": "collection" if d.access_groups is None else "only " + (", ".join(d.access_groups) or "admins"),
        "Size": fmt_size(d.file_size), "Pages": d.pages, "Passages": d.n_chunks,
        "Last indexed": fmt_time(d.indexed_at),
    }


def _actions(ctx: PageContext, collection: str, doc: DocumentInfo, groups: list[str]) -> None:
    st.markdown(document_heading_html(doc.title, doc.path), unsafe_allow_html=True)  # PDF metadata: untrusted
    a, b, c = st.columns(3)
    if a.button("Enable" if doc.disabled else "Disable", key=f"toggle-{doc.document_id}", width="stretch",
                icon=":material/toggle_on:" if doc.disabled else ":material/toggle_off:"):
        with friendly_errors():
            ctx.app.set_document_disabled(ctx.principal, collection, doc.document_id, not doc.disabled)
            st.rerun()
    if b.button("Re-index", key=f"reindex-{doc.document_id}", width="stretch", icon=":material/refresh:"):
        with friendly_errors(), st.spinner("Parsing and embedding again…"):
            result = ctx.app.reindex_document(ctx.principal, collection, doc.document_id)
            if result.status == "failed":
                st.error(f"Re-index failed: {esc(result.reason or '')}")
            else:
                st.toast(f"Re-indexed: {result.chunks} passages")
    with c.popover("Remove", icon=":material/delete:", width="stretch"):
        st.write("Remove this document from the index? Uploaded originals are deleted too.")
        if st.button("Yes, remove", type="primary", key=f"remove-{doc.document_id}"):
            with friendly_errors():
                ctx.app.remove_document(ctx.principal, collection, doc.document_id)
                st.rerun()
    with st.form(f"access-{doc.document_id}"):
        override = st.radio("Who may read it", ["Same as the collection", "Only these groups"],
                            index=0 if doc.access_groups is None else 1, horizontal=True)
        chosen = st.multiselect("Groups", groups, default=doc.access_groups or [], accept_new_options=True,
                                help="Used when 'Only these groups' is chosen. Admins always have access.")
        if st.form_submit_button("Save access"):
            with friendly_errors():
                ctx.app.set_document_access(ctx.principal, collection, doc.document_id,
                                        None if override.startswith("Same") else chosen)
                st.toast("Access saved")
                st.rerun()


def render() -> None:
    ctx = context(admin=True)
    st.title("Documents")
    rows = ctx.app.collections_overview(ctx.principal)
    if not rows:
        theme.empty_state("No collections yet", "Create a collection on the Collections page first.")
        return
    names = [r.rec.name for r in rows]
    collection = st.selectbox("Collection", names, key="docs_collection")
    docs = ctx.app.list_documents(ctx.principal, collection)
    if not docs:
        theme.empty_state("No documents in this collection",
                          "Add files on the Upload page, or run `docent ingest FOLDER --collection "
                          f"\"{collection}\"` from cron.")
        return
    query = st.text_input("Filter", placeholder="Title or file name", key="docs_filter").strip().lower()
    shown = [d for d in docs if query in d.title.lower() or query in d.path.lower()] if query else docs
    disabled = sum(d.disabled for d in docs)
    st.caption(f"{len(docs)} document(s), {sum(d.n_chunks for d in docs)} passages"
               + (f", {disabled} disabled" if disabled else ""))
    st.dataframe([_row(d) for d in shown], hide_index=True, width="stretch")
    if not shown:
        st.caption("No document matches the filter.")
        return
    by_id = {d.document_id: d for d in shown}
    picked = st.selectbox("Manage document", list(by_id), key=f"docs-pick-{collection}",
                          format_func=lambda i: f"{by_id[i].title} — {by_id[i].path.rsplit('/', 1)[-1]}")
    doc = by_id[picked]
    groups = known_groups(ctx, rows)
    with st.container(border=True):
        _actions(ctx, collection, doc, groups)


if __name__ == "__main__":
    render()
