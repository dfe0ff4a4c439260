"""The one error a parser raises: a machine-readable reason plus a message a person can act on."""

from __future__ import annotations

from typing import Literal, get_args

ParseReason = Literal["encrypted", "corrupt", "no_text", "unsupported", "timeout", "too_large", "memory"]
PARSE_REASONS: frozenset[str] = frozenset(get_args(ParseReason))


class ParseError(Exception):
    """A document could not be parsed. ``reason`` groups failures in the batch report;
    ``message`` says what exactly went wrong, e.g. ``ParseError("encrypted", "password required")``."""

    def __init__(self, reason: ParseReason, message: str) -> None:
        if reason not in PARSE_REASONS:
            raise ValueError(f"unknown parse error reason {reason!r}; expected one of {sorted(PARSE_REASONS)}")
        super().__init__(reason, message)
        self.reason: ParseReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    # Exceptions cross the worker-process boundary by pickle; the default reduce would
    # call __init__ with args in the right order already, but being explicit keeps it so.
    def __reduce__(self):  # type: ignore[override]
        return (type(self), (self.reason, self.message))
