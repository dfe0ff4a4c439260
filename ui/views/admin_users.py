"""Admin · Users & groups: the built-in users (roles, groups, passwords) and what each group may do."""

from __future__ import annotations

import streamlit as st

from ui.auth.users import ROLES
from ui.usecases import CollectionRow
from ui.views.admin_collections import known_groups
from ui.views.common import PageContext, context, fmt_time, friendly_errors


def _add_user(ctx: PageContext, groups: list[str]) -> None:
    with st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("User name")
        password = st.text_input("Initial password", type="password", help="At least 8 characters.")
        role = st.radio("Role", ROLES, index=1, horizontal=True)
        chosen = st.multiselect("Groups", groups, accept_new_options=True)
        if st.form_submit_button("Add user", type="primary"):
            with friendly_errors():
                ctx.app.add_user(ctx.principal, name, password, role, chosen)
                st.toast(f"Added {name}")
                st.rerun()


def _edit_user(ctx: PageContext, groups: list[str]) -> None:
    users = ctx.app.list_users(ctx.principal)
    by_name = {u.username: u for u in users}
    name = st.selectbox("Edit user", list(by_name), key="users_pick")
    user = by_name[name]
    with st.form(f"edit-{name}"):
        role = st.radio("Role", ROLES, index=ROLES.index(user.role), horizontal=True)
        chosen = st.multiselect("Groups", sorted(set(groups) | set(user.groups)), default=user.groups,
                                accept_new_options=True)
        if st.form_submit_button("Save", type="primary"):
            with friendly_errors():
                ctx.app.update_user(ctx.principal, name, role, chosen)
                st.toast("Saved")
                st.rerun()
    a, b = st.columns(2)
    with a.popover("Set password", icon=":material/key:", width="stretch"):
        new = st.text_input("New password", type="password", key=f"pw-{name}")
        if st.button("Set password", key=f"setpw-{name}"):
            with friendly_errors():
                ctx.app.set_user_password(ctx.principal, name, new)
                st.success("Password changed.")
    with b.popover("Remove", icon=":material/person_remove:", width="stretch"):
        st.write(f"Remove **{name}**? They can no longer log in.")
        if st.button("Yes, remove", type="primary", key=f"rm-{name}"):
            with friendly_errors():
                ctx.app.remove_user(ctx.principal, name)
                st.rerun()


def _groups_overview(ctx: PageContext, rows: list[CollectionRow]) -> None:
    members = ctx.app.group_members(ctx.principal)
    names = sorted(set(members) | {g for r in rows for g in (*r.rec.read_groups, *r.rec.write_groups)})
    st.dataframe([{
        "Group": g, "Members": ", ".join(members.get(g, [])) or ("all users" if g == "everyone" else "—"),
        "May read": ", ".join(r.rec.name for r in rows if g in r.rec.read_groups) or "—",
        "May upload": ", ".join(r.rec.name for r in rows if g in r.rec.write_groups) or "—",
    } for g in names], hide_index=True, width="stretch")


def render() -> None:
    ctx = context(admin=True)
    st.title("Users & groups")
    rows = ctx.app.collections_overview(ctx.principal)
    groups = known_groups(ctx, rows)
    mode = ctx.app.settings.auth_mode
    if mode != "builtin":
        st.info(f"Login mode is **{mode}**: users and their groups come from "
                + ("your identity provider (OIDC)." if mode == "oidc" else "the reverse proxy's headers.")
                + f" Members of '{ctx.app.settings.admin_group}' are admins.")
    else:
        users = ctx.app.list_users(ctx.principal)
        st.dataframe([{"User": u.username, "Role": u.role, "Groups": ", ".join(u.groups) or "—",
                       "Created": fmt_time(u.created_at), "Last login": fmt_time(u.last_login)} for u in users],
                     hide_index=True, width="stretch")
        left, right = st.columns(2, gap="large")
        with left:
            _edit_user(ctx, groups)
        with right:
            _add_user(ctx, groups)
    st.subheader("Groups")
    st.caption("Everyone is in 'everyone'. Give a group access on the Collections page.")
    _groups_overview(ctx, rows)


if __name__ == "__main__":
    render()
