"""What a use case can refuse with, in one place: the layer's own errors and, re-exported, the
ones from below that a front end must tell apart (busy index, unknown collection or user, …),
so adapters import exceptions from here and never from the store, catalog or searcher."""

from __future__ import annotations

from assistant.answer_data import AnswerDataError
from assistant.errors import LLMServerError, LLMTimeoutError, LLMUnavailableError
from assistant.guard import SummaryRefusedError
from assistant.rate_limit import RateLimitedError
from ingest.reindex import ReindexError
from retrieval.catalog import CatalogError
from retrieval.index import IndexModelMismatchError
from retrieval.rerank import RerankerUnavailableError
from retrieval.search import SearchError
from retrieval.store.base import IndexBusyError
from retrieval.store.lock import LockBusyError
from ui.auth.principal import UnknownUserError
from ui.auth.users import UserStoreError

__all__ = [
    "AdminOnlyError", "AnswerDataError", "CatalogError", "DocumentUnavailableError", "IndexBusyError", "IndexModelMismatchError",
    "LLMServerError", "LLMTimeoutError", "LLMUnavailableError", "LockBusyError", "NoLanguageModelError",
    "OriginalMissingError", "RateLimitedError", "ReindexError", "RerankerUnavailableError", "SearchError", "SummaryRefusedError",
    "UnknownUserError", "UploadNotAllowedError", "UserStoreError", "NO_LONGER_AVAILABLE",
]

NO_LONGER_AVAILABLE = "This source is no longer available to you."


class DocumentUnavailableError(PermissionError):
    """Missing, disabled and forbidden read the same to the user: nothing leaks by the wording."""

    def __init__(self) -> None:
        super().__init__("This document is not available to you: it was removed or disabled, "
                         "or you do not have access to it.")


class NoLanguageModelError(RuntimeError):
    def __init__(self, notice: str | None):
        super().__init__((notice or "No language model is configured.") + " Summaries need one; "
                         "ask an administrator to set DOCENT_LLM_BASE_URL or the local model.")


class AdminOnlyError(PermissionError):
    def __init__(self) -> None:
        super().__init__("This page is for administrators.")


class UploadNotAllowedError(PermissionError):
    pass


class OriginalMissingError(FileNotFoundError):
    pass
