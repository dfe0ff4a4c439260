"""Admin · Collections: create, rename, delete (confirmed), and who may read and write."""

from __future__ import annotations

import streamlit as st

from ui import theme
from ui.usecases import EVERYONE, CollectionRow
from ui.views.common import PageContext, context, fmt_time, friendly_errors


def known_groups(ctx: PageContext, rows: list[CollectionRow]) -> list[str]:
    groups = {EVERYONE, ctx.app.settings.admin_group, *ctx.app.group_members(ctx.principal).keys()}
    for r in rows:
        groups.update(r.rec.read_groups)
        groups.update(r.rec.write_groups)
    return sorted(groups)


def _create(ctx: PageContext, groups: list[str]) -> None:
    with st.form("new_collection", clear_on_submit=True):
        st.markdown("**New collection**")
        name = st.text_input("Name", placeholder="e.g. HR policies")
        description = st.text_input("Description", placeholder="Optional")
        read = st.multiselect("May read", groups, default=[EVERYONE], accept_new_options=True,
                              help="'everyone' means every logged-in user.")
        write = st.multiselect("May upload", groups, accept_new_options=True)
        if st.form_submit_button("Create collection", type="primary"):
            with friendly_errors():
                rec = ctx.app.create_collection(ctx.principal, name, read, write, description)
                st.toast(f"Created {rec.name}")
                st.rerun()


def _manage(ctx: PageContext, row: CollectionRow, groups: list[str]) -> None:
    rec = row.rec
    access, rename, delete = st.tabs(["Access", "Rename", "Delete"])
    with access, st.form(f"access-{rec.id}"):
        read = st.multiselect("May read", groups, default=rec.read_groups, accept_new_options=True)
        write = st.multiselect("May upload", groups, default=rec.write_groups, accept_new_options=True)
        st.caption("Admins may always read and upload. A document's own access override wins over these.")
        if st.form_submit_button("Save access", type="primary"):
            with friendly_errors():
                ctx.app.set_collection_groups(ctx.principal, rec.id, read, write)
                st.toast("Access saved")
                st.rerun()
    with rename, st.form(f"rename-{rec.id}"):
        new_name = st.text_input("New name", value=rec.name)
        if st.form_submit_button("Rename"):
            with friendly_errors():
                ctx.app.rename_collection(ctx.principal, rec.id, new_name)
                st.session_state["admin_collection"] = new_name.strip()
                st.rerun()
    with delete:
        st.warning(f"Deleting **{rec.name}** removes its {row.documents} document(s) from the index and "
                   "deletes uploaded originals. Files ingested from shared folders stay where they are.")
        confirm = st.text_input("Type the collection's name to confirm", key=f"confirm-{rec.id}")
        if st.button("Delete collection", type="primary", disabled=confirm.strip() != rec.name,
                     key=f"delete-{rec.id}", icon=":material/delete:"):
            with friendly_errors():
                ctx.app.delete_collection(ctx.principal, rec.id)
                st.session_state.pop("admin_collection", None)
                st.toast(f"Deleted {rec.name}")
                st.rerun()


def render() -> None:
    ctx = context(admin=True)
    st.title("Collections")
    rows = ctx.app.collections_overview(ctx.principal)
    groups = known_groups(ctx, rows)
    left, right = st.columns([3, 2], gap="large")
    with left:
        if not rows:
            theme.empty_state("No collections yet",
                              "Create one here, then add documents on the Upload page or with "
                              "`docent ingest FOLDER --collection NAME`.")
        else:
            st.dataframe(
                [{"Collection": r.rec.name, "Documents": r.documents, "Passages": r.chunks,
                  "May read": ", ".join(r.rec.read_groups) or "—", "May upload": ", ".join(r.rec.write_groups) or "—",
                  "Created": fmt_time(r.rec.created_at)} for r in rows],
                hide_index=True, width="stretch")
            names = [r.rec.name for r in rows]
            if st.session_state.get("admin_collection") not in names:
                st.session_state["admin_collection"] = names[0]
            chosen = st.selectbox("Manage", names, key="admin_collection")
            _manage(ctx, next(r for r in rows if r.rec.name == chosen), groups)
    with right:
        _create(ctx, groups)


if __name__ == "__main__":
    render()
