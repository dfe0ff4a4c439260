"""The three login modes, as Streamlit sees them: built-in form, OIDC (st.login), trusted proxy header.

``current_principal`` is asked on every rerun, so a removed user, a changed role or a changed
password takes effect at the next click, not at the next login.

The built-in login keeps a signed session token (ui/auth/sessions.py) in the session state
and in a browser cookie, so a reload keeps the login. Streamlit reads the cookies the browser
sent (``st.context.cookies``) but cannot set one, so two lines of JavaScript in ``st.html``
write it; the script holds nothing but the token (URL-safe base64). Written by JavaScript, the
cookie cannot be HttpOnly; it is SameSite=Strict, Secure on https, and its token dies with its
age limit or the next password change. Logging out drops the token and deletes the cookie.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import streamlit as st

from retrieval.models import Principal
from retrieval.settings import Settings
from ui.auth.bootstrap import initial_admin_file
from ui.auth.limiter import LoginLimiter, attempt_login
from ui.auth.principal import (  # noqa: F401  (ProxyConfigError: re-exported)
    ProxyConfigError,
    principal_for_record,
    principal_from_identity,
    principal_from_oidc_claims,
    principal_from_proxy_headers,
    split_groups,
)
from ui.auth.sessions import COOKIE, SessionTokens
from ui.auth.users import UserRecord, UserStore

_TOKEN = "auth_token"
_LOGGED_OUT = "auth_logged_out"  # this browser session logged out: its request's cookie is stale
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_TOKENS: dict[tuple[Path, int], SessionTokens] = {}


def current_principal(settings: Settings, users: UserStore) -> Principal | None:
    mode = settings.auth_mode
    if mode == "builtin":
        record = _builtin_user(settings, users)
        return principal_for_record(settings, record) if record else None
    if mode == "oidc":
        if not st.user.is_logged_in:
            return None
        return principal_from_oidc_claims(settings, st.user.to_dict())
    if mode == "proxy":
        return principal_from_proxy_headers(settings, st.context.headers, st.get_option("server.address"))
    raise ValueError(f"unknown auth mode {mode!r}: use builtin, oidc or proxy")


def _tokens(settings: Settings) -> SessionTokens:
    key = (settings.data_dir, settings.session_max_age_s)
    if key not in _TOKENS:  # one read of the secret file per process, not one per rerun
        _TOKENS[key] = SessionTokens.from_settings(settings)
    return _TOKENS[key]


def _builtin_user(settings: Settings, users: UserStore) -> UserRecord | None:
    """The user of this session's token, or of the browser's cookie after a reload."""
    sent = st.context.cookies.get(COOKIE)
    token = st.session_state.get(_TOKEN)
    if token is None and not st.session_state.get(_LOGGED_OUT):
        token = sent
    user = _tokens(settings).verify(token, users) if token else None
    if user is None:
        st.session_state.pop(_TOKEN, None)
        return None
    st.session_state[_TOKEN] = token
    if token != sent and _TOKEN_RE.match(token):  # logged in in this session: the browser has no cookie yet
        with st.sidebar:
            _cookie_script(f"{COOKIE}={token}; Path=/; Max-Age={int(settings.session_max_age_s)}; SameSite=Strict")
    return user


def _cookie_script(cookie: str) -> None:
    st.html(f"<script>document.cookie = {json.dumps(cookie)} + "
            "(location.protocol === 'https:' ? '; Secure' : '');</script>", unsafe_allow_javascript=True)


def render_login(settings: Settings, users: UserStore) -> None:
    """The page a visitor without a session sees."""
    _, middle, _ = st.columns([1, 1.3, 1])
    with middle:
        st.markdown("## :blue[:material/menu_book:] Docent")
        st.caption("Answers from your documents, every claim with its source and page.")
        if settings.auth_mode == "builtin":
            if COOKIE in st.context.cookies or st.session_state.get(_LOGGED_OUT):  # stale or logged out
                _cookie_script(f"{COOKIE}=; Path=/; Max-Age=0; SameSite=Strict")
            _builtin_form(settings, users)
        elif settings.auth_mode == "oidc" and st.user.is_logged_in:  # logged in there, refused here
            st.error("Your identity provider did not confirm your e-mail address, so Docent cannot tell who you "
                     "are. Ask your administrator to have the provider verify it.")
            if st.button("Log out", width="stretch"):
                st.logout()
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
        address = st.context.ip_address  # None on localhost (and not a str under Streamlit's AppTest)
        result = attempt_login(users, LoginLimiter.from_settings(settings), username or "", password or "",
                               address if isinstance(address, str) else None)
        if result.blocked:
            minutes = max(1, round(settings.login_window_s / 60))
            st.error(f"Too many failed logins for this user or from this address. Try again in {minutes} minutes.")
        elif result.user is None:
            st.error("Wrong user name or password.")
        else:
            st.session_state[_TOKEN] = _tokens(settings).issue(result.user)
            st.session_state.pop(_LOGGED_OUT, None)
            st.rerun()
    if initial_admin_file(settings).exists():
        st.caption(f"First start: log in as **admin** with the password in `{initial_admin_file(settings)}`.")


def logout(settings: Settings) -> None:
    if settings.auth_mode == "oidc":
        st.logout()
        return
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[_LOGGED_OUT] = True  # the login page then deletes the cookie
    st.rerun()


def can_logout(settings: Settings) -> bool:
    return settings.auth_mode != "proxy"
