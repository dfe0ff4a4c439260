"""The Streamlit adapter of the application layer: one ``ui.usecases.Docent`` per process.

Streamlit runs each browser session in a thread of one process, and the embedded index admits
one opener per process, so the facade and its heavy parts live in ``st.cache_resource``: the
opened index is keyed by its location only (settings that differ elsewhere, another LLM say,
share it), the embedding model by the model only, and it is loaded on first use so admin pages
that never embed do not wait for it. Nothing here is a use case: pages call the facade.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack

import streamlit as st

from retrieval.settings import Settings
from retrieval.telemetry import process_metrics
from ui.auth.bootstrap import ensure_first_admin
from ui.usecases import Docent, LLMState
from ui.usecases.core import load_embedder, make_guard, open_llm_state, open_workspace


def settings_key(settings: Settings) -> str:
    return settings.model_dump_json()


_HASH = {Settings: settings_key}


@st.cache_resource(show_spinner=False, hash_funcs=_HASH)
def get_app(settings: Settings) -> Docent:
    """The process's facade for ``settings``; the first admin is created here on first start."""
    app = Docent.from_settings(settings, workspace=lambda: _workspace(settings), llm=lambda: _llm(settings),
                               guard=lambda: _guard(settings))
    first = ensure_first_admin(settings, app.users)
    if first is not None:
        # Visible in the terminal of whoever started the app with plain `streamlit run`.
        print(first.instructions(), flush=True)
    _guard(settings)  # brings /metrics up at start, not at the first question
    if settings.api_with_ui:
        from ui.api.server import serve_in_background

        serve_in_background(app, settings.api_host, settings.api_port)
        print(f"Docent API on http://{settings.api_host}:{settings.api_port}/v1", flush=True)
    return app


# Keyed by the model only: every data folder in the process shares one loaded model.
_MODEL_HASH = {Settings: lambda s: f"{s.embedding_model}|{s.embedding_device}|{s.cache_dir}"}


@st.cache_resource(show_spinner="Loading the embedding model…", hash_funcs=_MODEL_HASH)
def _embedder(settings: Settings):
    return load_embedder(settings)


class _LazyEmbedder:
    """Loads the shared model on first use: admin pages that never embed do not wait for it."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def __getattr__(self, name: str):
        return getattr(_embedder(self._settings), name)


_INDEX_HASH = {Settings: lambda s: f"{s.data_dir.resolve()}|{s.qdrant_url}|{s.qdrant_embedded_engine}|"
                                   f"{s.collection_prefix}|{s.embedding_model}"}


@st.cache_resource(show_spinner="Opening the index…", hash_funcs=_INDEX_HASH)
def _workspace(settings: Settings):
    # A failed open (index busy) is not cached: the next run tries again.
    ws = open_workspace(settings, _LazyEmbedder(settings), process_metrics())
    atexit.register(ws.close)
    return ws


@st.cache_resource(show_spinner="Starting the language model…", hash_funcs=_HASH)
def _llm(settings: Settings) -> LLMState:
    stack = ExitStack()
    atexit.register(stack.close)
    return open_llm_state(settings, stack, process_metrics())


@st.cache_resource(show_spinner=False, hash_funcs=_HASH)
def _guard(settings: Settings):
    """One guard per process, so the rate limit counts every session's questions together."""
    return make_guard(settings, process_metrics(), serve_metrics=True)
