"""The batch job's report: one line per file plus totals, machine-readable for cron and the UI."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

FileStatus = Literal["indexed", "unchanged", "failed", "skipped", "removed"]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3


class FileResult(BaseModel):
    path: str
    status: FileStatus
    reason: str | None = None
    chunks: int = 0
    seconds: float = 0.0
    pages: int | None = None
    warnings: list[str] = Field(default_factory=list)


class IngestReport(BaseModel):
    collection: str
    started_at: float
    finished_at: float = 0.0
    files: list[FileResult] = Field(default_factory=list)

    @property
    def totals(self) -> dict[str, int | float]:
        counts = Counter(f.status for f in self.files)
        totals: dict[str, int | float] = {s: counts.get(s, 0) for s in ("indexed", "unchanged", "failed", "skipped", "removed")}
        totals["files"] = len(self.files)
        totals["chunks"] = sum(f.chunks for f in self.files if f.status == "indexed")
        totals["pages"] = sum(f.pages or 0 for f in self.files if f.status == "indexed")
        totals["seconds"] = round(self.finished_at - self.started_at, 3)
        return totals

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if any(f.status == "failed" for f in self.files) else EXIT_OK

    def to_json_dict(self) -> dict:
        return {
            "collection": self.collection,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "files": [f.model_dump() for f in self.files],
            "totals": self.totals,
        }

    def summary_line(self) -> str:
        t = self.totals
        return (
            f"{self.collection}: {t['indexed']} indexed ({t['chunks']} chunks), {t['unchanged']} unchanged, "
            f"{t['removed']} removed, {t['skipped']} skipped, {t['failed']} failed in {t['seconds']:.1f} s"
        )
