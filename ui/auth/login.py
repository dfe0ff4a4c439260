"""The three login modes, as Streamlit sees them: built-in form, OIDC (st.login), trusted proxy header.

``current_principal`` is asked on every rerun, so a removed user or a changed role takes
effect at the next click, not at the next login.
"""

from __future__ import annotations

import time

import streamlit as st

from retrieval.models import Principal
from retrieval.settings import Settings
from ui.auth.bootstrap import initial_admin_file
from ui.auth.principal import (  # noqa: F401  (ProxyConfigError: re-exported)
    ProxyConfigError,
    principal_for_record,
    principal_from_identity,
    principal_from_proxy_headers,
    split_groups,
)
from ui.auth.users import UserStore

_SESSION_USER = "auth_user"
_FAILURES = "auth_failures"


def current_principal(settings: Settings, users: UserStore) -> Principal | None:
    mode = settings.auth_mode
    if mode == "builtin":
        name = st.session_state.get(_SESSION_USER)
        record = users.find(name) if name else None
        if record is None:
            st.session_state.pop(_SESSION_USER, None)
            return None
        return principal_for_record(settings, record)
    if mode == "oidc":
        if not st.user.is_logged_in:
            return None
        claims = st.user.to_dict()
        name = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
        return principal_from_identity(settings, str(name), split_groups(claims.get(settings.oidc_groups_claim)))
    if mode == "proxy":
        return principal_from_proxy_headers(settings, st.context.headers, st.get_option("server.address"))
    raise ValueError(f"unknown auth mode {mode!r}: use builtin, oidc or proxy")


def render_login(settings: Settings, users: UserStore) -> None:
    """The page a visitor without a session sees."""
    _, middle, _ = st.columns([1, 1.3, 1])
    with middle:
        st.markdown("## :blue[:material/menu_book:] Docent")
        st.caption("Answers from your documents, every claim with its source and page.")
        if settings.auth_mode == "builtin":
            _builtin_form(settings, users)
        elif settings.auth_mode == "oidc":
            st.info("Log in with your company account.")
            if st.button("Log in", type="primary", width="stretch"):
                st.login(settings.oidc_provider) if settings.oidc_provider else st.login()
        else:
            st.error(
                f"No user was announced by the reverse proxy (header {settings.proxy_user_header}). "
                "Open Docent through the company portal, or ask an administrator to check the proxy."
            )


def _builtin_form(settings: Settings, users: UserStore) -> None:
    with st.form("login", border=True):
        username = st.text_input("User name", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary", width="stretch")
    if submitted:
        record = users.authenticate(username, password) if username and password else None
        if record is None:
            failures = st.session_state.get(_FAILURES, 0) + 1
            st.session_state[_FAILURES] = failures
            # Slows guessing from one session; real lockout belongs to the identity provider.
            time.sleep(min(0.25 * 2 ** (failures - 1), 4.0))
            st.error("Wrong user name or password.")
        else:
            st.session_state[_SESSION_USER] = record.username
            st.session_state.pop(_FAILURES, None)
            st.rerun()
    if initial_admin_file(settings).exists():
        st.caption(f"First start: log in as **admin** with the password in `{initial_admin_file(settings)}`.")


def logout(settings: Settings) -> None:
    if settings.auth_mode == "oidc":
        st.logout()
        return
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.rerun()


def can_logout(settings: Settings) -> bool:
    return settings.auth_mode != "proxy"
