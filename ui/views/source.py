"""The page a citation link opens (``/source?c=<collection>&d=<document>&p=<page>``): links in
API answers and in other tools point here. The user signs in as for any page; the document is
shown only after ``Docent.document`` checked that they may read it now."""

from __future__ import annotations

import streamlit as st

from ui.render import esc
from ui.usecases import open_at_page_html
from ui.usecases.errors import DocumentUnavailableError, OriginalMissingError
from ui.views.common import context, friendly_errors, plain_error


def _page_text(ctx, collection: str, document_id: str, page: int | None) -> str:
    chunks = ctx.app.read_document(ctx.principal, collection, document_id)
    if page is not None:
        chunks = [c for c in chunks if c.page == page] or chunks
    return "\n\n".join(c.text for c in chunks[:40])


def render() -> None:
    ctx = context()
    params = st.query_params
    collection, document_id = params.get("c", ""), params.get("d", "")
    raw_page = params.get("p", "")
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else None
    try:
        info = ctx.app.document(ctx.principal, collection, document_id)
    except DocumentUnavailableError as exc:
        st.warning(str(exc))
        return
    st.markdown(f"#### {esc(info.title)}")
    st.caption(esc(" · ".join(x for x in (f"p. {page}" if page else "", info.path.rsplit("/", 1)[-1]) if x)))
    with friendly_errors():
        try:
            file = ctx.app.download(ctx.principal, collection, document_id)
        except OriginalMissingError as exc:
            file = None
            st.warning(str(exc))
        if file is not None:
            opener = open_at_page_html(file, page, f"Open at page {page}" if page else "Open PDF")
            if opener:
                st.html(opener, unsafe_allow_javascript=True)
        png = ctx.app.page_image(ctx.principal, collection, document_id, page) if page else None
        if png:
            st.image(png, caption=f"Page {page}", width="stretch")
        else:
            st.text(_page_text(ctx, collection, document_id, page))


if __name__ == "__main__":
    try:
        render()
    except Exception as exc:  # noqa: BLE001 - a page shows one plain sentence, never a traceback
        st.error(plain_error(exc))
