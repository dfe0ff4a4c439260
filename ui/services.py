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
        from retrieval.telemetry import InstrumentedSearcher, process_metrics

        return InstrumentedSearcher(Searcher.from_workspace(self.workspace), process_metrics())

    @property
    def guard(self):
        return _guard(self.settings)

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
    _guard(settings)  # brings /metrics up at start, not at the first question
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


# One opened index per index location: settings that differ elsewhere (another LLM, say) must
# share it, since the embedded engine admits one opener per process.
_INDEX_HASH = {Settings: lambda s: f"{s.data_dir.resolve()}|{s.qdrant_url}|{s.qdrant_embedded_engine}|"
                                   f"{s.collection_prefix}|{s.embedding_model}"}


@st.cache_resource(show_spinner="Opening the index…", hash_funcs=_INDEX_HASH)
def _workspace(settings: Settings) -> Workspace:
    from retrieval.telemetry import IndexSizeCollector, process_metrics

    ws = Workspace(settings, embedder=_LazyEmbedder(settings))
    atexit.register(ws.close)
    # Sizes are read at scrape time from this already-open index; a scrape never opens one.
    process_metrics().add_collector(IndexSizeCollector(lambda: ws.index, settings.metrics_collection_names))
    return ws


@st.cache_resource(show_spinner="Starting the language model…", hash_funcs=_HASH)
def _llm(settings: Settings) -> LLMState:
    # The choice (server, prepared local model, or none) is assistant.service's, shared with the
    # CLI; the app keeps it open for the life of the process.
    from assistant.service import open_llm

    context = open_llm(settings)
    choice = context.__enter__()
    atexit.register(context.__exit__, None, None, None)
    from assistant.llm_telemetry import InstrumentedLLM
    from retrieval.telemetry import process_metrics

    label = {"server": settings.llm_model, "local": f"{settings.local_llm} (local)"}.get(choice.source, "none")
    client = InstrumentedLLM(choice.client, process_metrics()) if choice.client else None
    return LLMState(client, label, choice.notice or None)


@st.cache_resource(show_spinner=False, hash_funcs=_HASH)
def _guard(settings: Settings):
    """Rate limit, safety policy, metrics and audit around every question: one per process."""
    from assistant.guard import AnswerGuard
    from retrieval.telemetry import ensure_metrics_server, process_metrics

    metrics = process_metrics()
    ensure_metrics_server(settings, metrics)
    return AnswerGuard.from_settings(settings, metrics)


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
    return res.guard.stream(principal, names, question, lambda q: answerer.stream_answer(q, history or None))
