"""The source panel: one cited passage with its page, opened from a source card.

The passage text, bytes and page images are shown only after the application layer
(``Docent.preview``, ``download``, ``page_image``) checked the logged-in user again: a source
card kept in a session cannot outlive a revoked access.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from retrieval.models import Passage
from ui.render import esc, location, passage_html
from ui.usecases import open_at_page_html
from ui.usecases.errors import NO_LONGER_AVAILABLE, DocumentUnavailableError, OriginalMissingError
from ui.views.common import PageContext, plain_error


def action_row(ctx: PageContext, passage: Passage, quotes: Sequence[str], key: str) -> None:
    """Buttons under a source card: open the source panel, download the original."""
    left, right, _ = st.columns([1, 1, 3])
    if left.button("View page" if passage.page else "View source", key=f"view-{key}",
                   icon=":material/visibility:", width="stretch"):
        source_dialog(ctx, passage, list(quotes))
    name = passage.path.rsplit("/", 1)[-1]

    def data() -> bytes:
        return ctx.app.download(ctx.principal, passage.collection, passage.document_id).data

    right.download_button("Download", data=data, file_name=name, key=f"dl-{key}", on_click="ignore",
                          icon=":material/download:", width="stretch")


@st.dialog("Source", width="large")
def source_dialog(ctx: PageContext, passage: Passage, quotes: list[str]) -> None:
    try:  # the passage text was cached when it was found; the user may have lost access since
        passage = ctx.app.preview(ctx.principal, passage)
    except DocumentUnavailableError:
        st.warning(NO_LONGER_AVAILABLE)
        return
    where = location(passage.page, passage.heading_path, passage.page_end)
    # Title, headings and file name come from the document: escaped, they stay text in Markdown.
    st.markdown(f"#### {esc(passage.title)}")
    st.caption(esc(" · ".join(x for x in (where, passage.path.rsplit("/", 1)[-1]) if x)))
    st.markdown(passage_html(passage, quotes), unsafe_allow_html=True)
    try:
        file = ctx.app.download(ctx.principal, passage.collection, passage.document_id)
    except OriginalMissingError as exc:
        st.warning(str(exc))
        return
    except Exception as exc:
        st.error(plain_error(exc))
        return
    open_col, download_col, _ = st.columns([1, 1, 2], vertical_alignment="center")
    opener = open_at_page_html(file, passage.page, f"Open at page {passage.page}" if passage.page else "Open PDF")
    if opener:
        with open_col:
            st.html(opener, unsafe_allow_javascript=True)
    download_col.download_button("Download original", data=file.data, file_name=file.name, mime=file.mime,
                                 key=f"dlg-{passage.document_id}-{passage.start}", on_click="ignore",
                                 icon=":material/download:")
    if passage.page:
        png = ctx.app.page_image(ctx.principal, passage.collection, passage.document_id, passage.page,
                         tuple(quotes))
        if png:
            st.image(png, caption=f"Page {passage.page} of {file.name}", width="stretch")
        else:
            st.caption("No page preview for this file; open or download it to see the page.")
