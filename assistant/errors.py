"""What can go wrong when talking to the language model server, in words a user can act on.

Every error carries ``user_message`` (plain words, safe to show in the UI or CLI) and keeps the
technical detail in ``str(exc)`` for logs. Callers catch these three classes (or ``LLMError``)
and never show a stack trace.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class: the language model could not produce an answer."""

    def __init__(self, detail: str = "", *, base_url: str | None = None, user_message: str | None = None):
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.base_url = base_url
        self.user_message = user_message or self._default_user_message()

    def _where(self) -> str:
        return f"The language model server at {self.base_url}" if self.base_url else "The language model server"

    def _default_user_message(self) -> str:
        return f"{self._where()} could not answer. Please try again later."


class LLMUnavailableError(LLMError):
    """Connection refused, name not resolved, server down or not configured."""

    def _default_user_message(self) -> str:
        return f"{self._where()} is not reachable. Is it running? (docent doctor checks this)"


class LLMTimeoutError(LLMError):
    """The server accepted the request but did not answer in time."""

    def __init__(self, detail: str = "", *, timeout_s: float | None = None, **kw):
        self.timeout_s = timeout_s
        super().__init__(detail, **kw)

    def _default_user_message(self) -> str:
        within = f" within {self.timeout_s:g} seconds" if self.timeout_s else " in time"
        return (
            f"{self._where()} did not answer{within}. It may be busy; "
            "please try again, or ask a shorter question."
        )


class LLMServerError(LLMError):
    """The server answered with an HTTP error (4xx/5xx); ``server_message`` is what it said."""

    def __init__(self, detail: str = "", *, status: int | None = None, server_message: str = "", **kw):
        self.status = status
        self.server_message = server_message
        super().__init__(detail, **kw)

    @property
    def context_exceeded(self) -> bool:
        """The prompt did not fit the model's context window (vLLM and llama.cpp phrasings)."""
        text = self.server_message.lower()
        return self.status == 400 and any(
            s in text for s in ("context length", "context size", "maximum context", "too long", "exceeds")
        )

    def _default_user_message(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        if self.context_exceeded:
            return f"{self._where()} refused the request{status}: the question and documents are too long for the model."
        said = f": {self.server_message}" if self.server_message else "."
        return f"{self._where()} reported an error{status}{said}"
