"""The audit log: one JSON line per question (or summary) — who, which collections, which
documents were cited, timings, outcome.

Privacy by default: the question and answer texts are NOT written, only their lengths; an
operator who needs them sets ``DOCENT_AUDIT_INCLUDE_TEXT=true`` (and then owns that data).
Lines go to ``<data_dir>/audit/audit-YYYY-MM-DD.jsonl`` (UTC days, mode 0600), each written with
one ``write`` on an ``O_APPEND`` descriptor, so the UI's threads and other processes on the same
volume can append without interleaving lines. Rotation = the date; retention is the operator's.
Logins (success, failure, lockout) go to the same files through ``record_login``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Sequence

from retrieval.models import Principal
from retrieval.private_files import open_private
from retrieval.settings import Settings

Outcome = Literal[
    "generated", "extractive", "refused", "blocked_input", "blocked_output", "rate_limited",
    "invalid", "error", "abandoned", "found", "tool_calls",
]
AuditKind = Literal["question", "summary", "search"]


@dataclass
class AuditEvent:
    """What one request did. ``question``/``answer`` are dropped unless text is included."""

    event: AuditKind
    user: str
    groups: list[str]
    admin: bool
    collections: list[str]
    outcome: Outcome
    cited: list[dict[str, Any]] = field(default_factory=list)
    passages: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    rule: str | None = None
    error_kind: str | None = None
    question: str = ""
    answer: str = ""
    documents: list[str] = field(default_factory=list)  # summaries: the document ids summarised
    via: str | None = None  # the front end when it is not the app or the CLI: "api:<key id>"

    def to_record(self, include_text: bool) -> dict[str, Any]:
        now = time.time()
        record: dict[str, Any] = {
            "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
            "event": self.event,
            "user": self.user,
            "groups": list(self.groups),
            "admin": self.admin,
            "collections": list(self.collections),
            "outcome": self.outcome,
            "cited": self.cited,
            "passages": self.passages,
            "timings_ms": {k: round(float(v), 1) for k, v in self.timings_ms.items()},
            "question_chars": len(self.question),
            "answer_chars": len(self.answer),
        }
        for key in ("rule", "error_kind", "via"):
            if getattr(self, key):
                record[key] = getattr(self, key)
        if self.documents:
            record["documents"] = list(self.documents)
        if include_text:
            record["question"] = self.question
            record["answer"] = self.answer
        return record


def cited_documents(citations: Sequence[Any]) -> list[dict[str, Any]]:
    """Documents an answer cited, once each, with the pages cited (from ``Citation`` objects)."""
    by_doc: dict[str, dict[str, Any]] = {}
    for c in citations:
        entry = by_doc.setdefault(c.document_id, {"document_id": c.document_id, "path": c.path,
                                                  "title": c.title, "pages": []})
        page = getattr(c, "page", None)
        if page is not None and page not in entry["pages"]:
            entry["pages"].append(page)
    return list(by_doc.values())


class AuditLog:
    def __init__(self, folder: Path, include_text: bool = False):
        self.folder = Path(folder)
        self.include_text = include_text
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuditLog":
        return cls(settings.data_dir / "audit", settings.audit_include_text)

    def path_for(self, when: float | None = None) -> Path:
        day = datetime.fromtimestamp(when if when is not None else time.time(), timezone.utc).strftime("%Y-%m-%d")
        return self.folder / f"audit-{day}.jsonl"

    def record(self, event: AuditEvent) -> dict[str, Any]:
        """Append one line; returns what was written."""
        return self._append(event.to_record(self.include_text))

    def record_login(self, event: str, user: str, ip: str | None, **detail: Any) -> dict[str, Any]:
        """One login event (``login``, ``login_failed``, ``login_locked``, ``login_blocked``); never the password."""
        now = time.time()
        return self._append({"ts": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
                             "event": event, "user": user, "ip": ip, **detail})

    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = open_private(self.path_for(), os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return record

    @staticmethod
    def event_for(principal: Principal, collections: Sequence[str], outcome: Outcome,
                  event: AuditKind = "question", **kw: Any) -> AuditEvent:
        return AuditEvent(event=event, user=principal.user, groups=list(principal.groups), admin=principal.is_admin,
                          collections=list(collections), outcome=outcome, **kw)
