"""The one place a Streamlit process wires Docent together: settings, the opened index, the
embedding model, search, the LLM, the user and feedback stores.

Process-wide resources live in ``st.cache_resource`` (Streamlit runs each browser session in
a thread of one process, and the embedded index allows one opener per process anyway).
Index writes from several sessions are serialised by one lock. Nothing here is a view: pages
call these functions and render what they return.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

import streamlit as st

from assistant.feedback import FeedbackStore
from retrieval.settings import Settings
from retrieval.workspace import Workspace
from ui.auth.bootstrap import ensure_first_admin
from ui.auth.users import UserStore

if TYPE_CHECKING:
    from assistant.answer_models import AnswerEvent
    from retrieval.models import Principal
    from retrieval.search import Searcher

log = logging.getLogger(__name__)

ANSWER_PASSAGES = 8


def settings_key(settings: Settings) -> str:
    return settings.model_dump_json()


_HASH = {Settings: settings_key}


@dataclass
class LLMState:
    """The language model the app answers with, or why there is none."""

    client: object | None
    label: str
    notice: str | None = None


@dataclass
class Resources:
    settings: Settings
    users: UserStore
    feedback: FeedbackStore
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def workspace(self) -> Workspace:
        """The opened index; raises IndexBusyError (plain words) when another process holds it."""
        return _workspace(self.settings)

    @cached_property
    def searcher(self) -> "Searcher":
        from retrieval.search import Searcher

        return Searcher.from_workspace(self.workspace)

    @property
    def llm(self) -> LLMState:
        return _llm(self.settings)


@st.cache_resource(show_spinner=False, hash_funcs=_HASH)
def get_resources(settings: Settings) -> Resources:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    users = UserStore.from_settings(settings)
    first = ensure_first_admin(settings, users)
    if first is not None:
        # Visible in the terminal of whoever started the app with plain `streamlit run`.
        print(first.instructions(), flush=True)
    return Resources(settings, users, FeedbackStore.from_settings(settings))


# Keyed by the model only: every data folder in the process shares one loaded model.
_MODEL_HASH = {Settings: lambda s: f"{s.embedding_model}|{s.embedding_device}|{s.cache_dir}"}


@st.cache_resource(show_spinner="Loading the embedding model…", hash_funcs=_MODEL_HASH)
def _embedder(settings: Settings):
    from retrieval.embeddings import Embedder

    return Embedder.from_settings(settings)


class _LazyEmbedder:
    """Loads the shared model on first use: admin pages that never embed do not wait for it."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def __getattr__(self, name: str):
        return getattr(_embedder(self._settings), name)


@st.cache_resource(show_spinner="Opening the index…", hash_funcs=_HASH)
def _workspace(settings: Settings) -> Workspace:
    ws = Workspace(settings, embedder=_LazyEmbedder(settings))
    atexit.register(ws.close)
    return ws


@st.cache_resource(show_spinner="Starting the language model…", hash_funcs=_HASH)
def _llm(settings: Settings) -> LLMState:
    if settings.llm_base_url:
        from assistant.llm_client import LLMClient

        return LLMState(LLMClient(settings), settings.llm_model)
    if settings.local_llm == "none":
        return LLMState(None, "none", "No language model is configured: answers are extracted from the documents.")
    try:
        from assistant.llm_client import LLMClient
        from assistant.local_llm import LocalLLMServer

        server = LocalLLMServer(settings)
        server.__enter__()
        atexit.register(server.__exit__, None, None, None)
        return LLMState(LLMClient(settings, base_url=server.base_url), settings.local_llm)
    except Exception as exc:  # the app still answers, extractively, and says why
        log.warning("local LLM did not start: %s", exc)
        return LLMState(None, "none", f"The local language model could not start ({exc}). "
                                      "Answers are extracted from the documents instead.")


def describe_llm(settings: Settings) -> str:
    """What answers questions, without starting anything (the local model starts on first use)."""
    if settings.llm_base_url:
        return settings.llm_model
    if settings.local_llm != "none":
        return f"{settings.local_llm} (local)"
    return "none (extracted answers)"


# --- answering -------------------------------------------------------------------------------


def stream_answer(res: Resources, principal: "Principal", collections: list[str], question: str,
                  history: list[dict] | None = None) -> Iterator["AnswerEvent"]:
    """Retrieval under ``principal``'s access filter, then a grounded, streamed answer."""
    from assistant.answerer import Answerer

    searcher = res.searcher
    names = list(collections)

    def retrieve(query: str):
        return searcher.search(query, principal, names, mode=searcher.best_mode, k=ANSWER_PASSAGES).passages

    answerer = Answerer(res.settings, res.llm.client, retrieve, fallback_to_extractive=True)
    return answerer.stream_answer(question, history or None)
