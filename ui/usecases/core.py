"""The composition root: one ``Docent`` per process, built from ``Settings``, owning every part
a use case needs (the opened index, search, the language model, the guard with its rate limit,
safety policy and audit, metrics, the user and feedback stores, the writers' locks).

Front ends (the Streamlit app, the CLI, the HTTP API to come) create it once and call its use
cases; none of them opens the index or the searcher itself. Parts are opened on first use: an
admin command that never searches does not load the embedding model, and the login page works
while another process holds the index (the first use case then raises ``IndexBusyError``).
A part may be handed in, already opened or as a zero-argument provider, so a long-lived
process (Streamlit) can share one opened index between settings that differ elsewhere.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator

from assistant.feedback import FeedbackStore
from retrieval.models import Principal
from retrieval.settings import Settings
from ui.auth.users import UserStore

if TYPE_CHECKING:
    from assistant.guard import AnswerGuard
    from retrieval.catalog import CollectionRecord
    from retrieval.telemetry import Metrics
    from retrieval.workspace import Workspace

# Whoever can run the CLI on the host can read the index files anyway: it acts as an admin.
LOCAL_ADMIN = Principal(user="local-admin", is_admin=True)


@dataclass
class LLMState:
    """The language model answers are written with, or why there is none."""

    client: object | None
    label: str
    notice: str | None = None
    source: str = "none"  # "server", "local" or "none", as assistant.service.LLMChoice


def _provider(part: Any) -> Callable[[], Any] | None:
    if part is None:
        return None
    return part if callable(part) else (lambda: part)


class DocentCore:
    """Settings, parts and locks; the use cases are mixed in by ``ui.usecases.Docent``."""

    def __init__(self, settings: Settings, *, workspace: Any = None, embedder: Any = None,
                 users: UserStore | None = None, feedback: FeedbackStore | None = None,
                 llm: Any = None, guard: Any = None, metrics: "Metrics | None" = None):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._users = users
        self._feedback = feedback
        # One lock for every index write of this process; collection_writer adds the files'.
        self.write_lock = threading.Lock()
        self._embedder = embedder
        self._workspace_provider = _provider(workspace)
        self._llm_provider = _provider(llm)
        self._guard_provider = _provider(guard)
        self._metrics = metrics
        self._parts: dict[str, Any] = {}
        self._parts_lock = threading.RLock()
        self._exit = ExitStack()

    @classmethod
    def from_settings(cls, settings: Settings, **parts: Any):
        return cls(settings, **parts)

    # --- parts, opened on first use --------------------------------------------------------
    def _part(self, name: str, make: Callable[[], Any]) -> Any:
        with self._parts_lock:
            if name not in self._parts:
                self._parts[name] = make()
            return self._parts[name]

    @property
    def users(self) -> UserStore:
        return self._users or self._part("users", lambda: UserStore.from_settings(self.settings))

    @property
    def feedback_store(self) -> FeedbackStore:
        return self._feedback or self._part("feedback", lambda: FeedbackStore.from_settings(self.settings))

    @property
    def metrics(self) -> "Metrics":
        from retrieval.telemetry import process_metrics

        return self._metrics or process_metrics()

    @property
    def workspace(self) -> "Workspace":
        """The opened index; raises ``IndexBusyError`` (plain words) when another process holds it.
        A provider is asked every time (it caches, and a busy index is retried next time)."""
        if self._workspace_provider is not None:
            return self._workspace_provider()

        return self._part("workspace", lambda: self._exit.enter_context(open_workspace(self.settings, self._embedder)))

    @property
    def searcher(self):
        def make():
            from retrieval.search import Searcher
            from retrieval.telemetry import InstrumentedSearcher

            return InstrumentedSearcher(Searcher.from_workspace(self.workspace), self.metrics)

        return self._part("searcher", make)

    @property
    def guard(self) -> "AnswerGuard":
        """Rate limit, safety policy, metrics and audit around every question and summary."""
        if self._guard_provider is not None:
            return self._guard_provider()

        return self._part("guard", lambda: make_guard(self.settings, self.metrics))

    @property
    def llm(self) -> LLMState:
        """The model choice of ``assistant.service.open_llm`` (shared with every front end),
        kept open until :meth:`close`."""
        if self._llm_provider is not None:
            return self._llm_provider()
        return self._part("llm", lambda: open_llm_state(self.settings, self._exit, self.metrics))

    def describe_llm(self) -> str:
        """What answers questions, without starting anything (the local model starts on first use)."""
        s = self.settings
        if s.llm_base_url:
            return s.llm_model
        if s.local_llm != "none":
            return f"{s.local_llm} (local)"
        return "none (extracted answers)"

    # --- identity and locks --------------------------------------------------------------------
    def principal(self, user: str, groups: list[str] | None = None) -> Principal:
        """A built-in user with their stored role and groups, or (``groups`` given) an OIDC or
        proxy identity as stated; raises ``UnknownUserError`` for a user that is not there
        (a removed one included)."""
        from ui.auth.principal import resolve_principal

        return resolve_principal(self.settings, user, groups)

    @contextmanager
    def collection_writer(self, rec: "CollectionRecord") -> Iterator[None]:
        """The right to write ``rec``: this process's write lock and the locks a ``docent ingest``
        run of it holds, so the two never write it at once. Raises ``LockBusyError`` at once
        naming the holder (a page must not hang behind a cron run)."""
        from ingest.run_locks import ingest_locks

        with self.write_lock, ingest_locks(self.settings, rec.name):
            yield

    # --- life cycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._exit.close()
        self._parts.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_llm_state(settings: Settings, exit_stack: ExitStack, metrics: "Metrics") -> LLMState:
    """Enter ``open_llm`` on ``exit_stack`` and wrap its client for metrics."""
    from assistant.llm_telemetry import InstrumentedLLM
    from assistant.service import open_llm

    choice = exit_stack.enter_context(open_llm(settings))
    label = {"server": settings.llm_model, "local": f"{settings.local_llm} (local)"}.get(choice.source, "none")
    client = InstrumentedLLM(choice.client, metrics) if choice.client else None
    return LLMState(client, label, choice.notice or None, choice.source)


def open_workspace(settings: Settings, embedder: Any = None, metrics: "Metrics | None" = None) -> "Workspace":
    """The opened index (raises ``IndexBusyError`` when another process holds it); with
    ``metrics``, its sizes are reported at scrape time from this already-open index."""
    from assistant.feedback import forget_document
    from retrieval.workspace import Workspace

    # Removing a document also removes the feedback text that quoted it.
    ws = Workspace(settings, embedder=embedder, on_document_removed=(forget_document,))
    if metrics is not None:
        from retrieval.telemetry import IndexSizeCollector

        metrics.add_collector(IndexSizeCollector(lambda: ws.index, settings.metrics_collection_names))
    return ws


def make_guard(settings: Settings, metrics: "Metrics", serve_metrics: bool = False) -> "AnswerGuard":
    """The guard; ``serve_metrics`` also brings up this process's /metrics endpoint (the app's)."""
    from assistant.guard import AnswerGuard

    if serve_metrics:
        from retrieval.telemetry import ensure_metrics_server

        ensure_metrics_server(settings, metrics)
    return AnswerGuard.from_settings(settings, metrics)


def load_embedder(settings: Settings):
    from retrieval.embeddings import Embedder

    return Embedder.from_settings(settings)
