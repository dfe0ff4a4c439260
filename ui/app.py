"""Docent's browser app (``docent ui``): login, then the assistant pages and, for admins, the
admin pages. This script only decides who is here and which pages they get; the pages render,
the application layer (``ui.usecases``, cached per process by ``ui.services``) does the work.

Everything runs inside ``main()``: the parser sandbox spawns worker interpreters, and a spawned
child re-imports the parent's main script (this file, under Streamlit) as ``__mp_main__``; it
must find nothing to run and nothing heavy to import.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # `streamlit run ui/app.py` puts ui/, not the repo, on the path
    sys.path.insert(0, str(_REPO))


def _pages(is_admin: bool) -> dict:
    import streamlit as st

    assistant = [
        st.Page("views/chat.py", title="Ask", icon=":material/chat:", url_path="ask", default=True),
        st.Page("views/summarize.py", title="Summarize", icon=":material/summarize:", url_path="summarize"),
        st.Page("views/upload.py", title="Upload", icon=":material/upload_file:", url_path="upload"),
        # Where citation links (API answers) land; not in the menu.
        st.Page("views/source.py", title="Source", icon=":material/description:", url_path="source",
                visibility="hidden"),
    ]
    admin = [
        st.Page("views/admin_collections.py", title="Collections", icon=":material/folder_managed:",
                url_path="admin-collections"),
        st.Page("views/admin_documents.py", title="Documents", icon=":material/description:", url_path="admin-documents"),
        st.Page("views/admin_history.py", title="Ingestion history", icon=":material/history:", url_path="admin-history"),
        st.Page("views/admin_users.py", title="Users & groups", icon=":material/group:", url_path="admin-users"),
        st.Page("views/admin_feedback.py", title="Feedback", icon=":material/thumbs_up_down:", url_path="admin-feedback"),
    ]
    # Admin pages are not even registered for others: their URLs fall back to the default page.
    return {"Assistant": assistant, "Admin": admin} if is_admin else {"Assistant": assistant}


def main() -> None:
    import streamlit as st

    from retrieval.settings import Settings
    from ui import theme
    from ui.auth.login import can_logout, current_principal, logout, render_login
    from ui.services import get_app
    from ui.views.common import CTX_KEY, PageContext, friendly_errors, plain_error

    st.set_page_config(page_title="Docent", page_icon=":material/menu_book:", layout="wide", initial_sidebar_state="expanded")
    theme.apply()

    settings = Settings()
    app = get_app(settings)
    principal = current_principal(settings, app.users)
    if principal is None:
        st.session_state.pop(CTX_KEY, None)
        render_login(settings, app.users)
        theme.footer()
        st.stop()

    nav = st.navigation(_pages(principal.is_admin), position="sidebar")
    ctx = PageContext(app, principal)
    with st.sidebar:
        st.markdown("### :blue[:material/menu_book:] Docent")
        st.caption(f"Signed in as **{principal.user}**" + (" · admin" if principal.is_admin else ""))
        try:
            ctx.readable = app.collections(principal)
        except Exception as exc:
            st.error(plain_error(exc))
        names = ctx.readable_names
        if "collections" in st.session_state:
            st.session_state["collections"] = [c for c in st.session_state["collections"] if c in names]
        else:
            st.session_state["collections"] = list(names)
        ctx.selected = st.multiselect(
            "Collections", names, key="collections", placeholder="Pick collections to search",
            help="The assistant answers from the documents in these collections.",
        )
        st.caption("Model: " + app.describe_llm())
        if can_logout(settings) and st.button("Log out", icon=":material/logout:", width="stretch"):
            logout(settings)

    st.session_state[CTX_KEY] = ctx
    with friendly_errors():
        nav.run()
    theme.footer()


if __name__ == "__main__":
    main()
