"""What every page needs: who is logged in, the application layer, errors in plain words."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import streamlit as st

from retrieval.models import Principal
from ui.usecases import CollectionView, Docent
from ui.usecases.errors import IndexBusyError, LockBusyError

log = logging.getLogger(__name__)
CTX_KEY = "_docent_ctx"


@dataclass
class PageContext:
    app: Docent
    principal: Principal
    readable: list[CollectionView] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)  # collection names picked in the sidebar

    @property
    def readable_names(self) -> list[str]:
        return [v.rec.name for v in self.readable]


def context(admin: bool = False) -> PageContext:
    """The context app.py prepared for this run; admin pages refuse non-admins here, on the
    server, whatever the browser asked for."""
    ctx = st.session_state.get(CTX_KEY)
    if not isinstance(ctx, PageContext):
        st.warning("Open Docent from its start page.")
        st.stop()
    if admin and not ctx.principal.is_admin:
        st.error("This page is for administrators.")
        st.stop()
    return ctx


def plain_error(exc: BaseException) -> str:
    """One sentence a user can act on, never a stack trace."""
    if isinstance(exc, (IndexBusyError, LockBusyError)):
        return (f"The document index is in use by another Docent process ({exc}). "
                "Try again when that job has finished.")
    user_message = getattr(exc, "user_message", None)
    if isinstance(user_message, str) and user_message:
        return user_message
    if isinstance(exc, (ValueError, PermissionError, LookupError, OSError, RuntimeError)):
        text = str(exc).strip()
        if isinstance(exc, KeyError) and len(exc.args) == 1:
            text = str(exc.args[0])
        return text[:1].upper() + text[1:] if text else type(exc).__name__
    return f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the server log."


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        # Streamlit's own control flow (st.rerun, st.stop) must pass through untouched.
        if type(exc).__module__.startswith("streamlit."):
            raise
        log.exception("page failed")
        st.error(plain_error(exc))


def split_list(text: str) -> list[str]:
    return [g.strip() for g in text.replace(";", ",").split(",") if g.strip()]


def fmt_time(ts: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "—"


def fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
