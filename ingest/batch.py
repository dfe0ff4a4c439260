"""The cron-friendly batch job: bring one collection in step with folders on disk.

Per file: unchanged (same size+mtime, or same content hash) -> nothing is parsed or embedded;
new or changed -> parse in a sandboxed worker, chunk, embed, write the new version, then
delete the old one; failed -> a specific reason, and the batch goes on. ``prune`` removes
documents whose files under the given roots disappeared.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ingest.discover import discover, under_roots
from ingest.errors import ParseError
from ingest.indexer import DocumentIndexer, SourceFile
from ingest.parsed import ParsedDocument
from ingest.partition import Partition
from ingest.report import FileResult, IngestReport
from retrieval.catalog import CollectionRecord
from retrieval.index import DocumentInfo, Index

ProgressFn = Callable[[str, int, int], None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Plan:
    """What a run must do for one file, decided without parsing it."""

    path: Path
    action: str  # "index" | "unchanged" | "cleanup"
    source: SourceFile | None = None
    keep: DocumentInfo | None = None


def plan_file(path: Path, versions: list[DocumentInfo]) -> Plan:
    stat = path.stat()
    # The cheap check first: cron re-runs over a large unchanged share must not read every file.
    for v in versions:
        if v.file_size == stat.st_size and v.file_mtime == stat.st_mtime:
            return Plan(path, "cleanup" if len(versions) > 1 else "unchanged", keep=v)
    file_hash = file_sha256(path)
    source = SourceFile(str(path), file_hash, stat.st_size, stat.st_mtime)
    for v in versions:
        if v.file_hash == file_hash:
            return Plan(path, "cleanup" if len(versions) > 1 else "unchanged", source, keep=v)
    return Plan(path, "index", source)


class BatchIngest:
    def __init__(self, index: Index, indexer: DocumentIndexer, parse: Callable[[Path], ParsedDocument]):
        self.index = index
        self.indexer = indexer
        self.parse = parse

    def run(self, rec: CollectionRecord, roots: list[Path], prune: bool = False,
            progress: ProgressFn | None = None, partition: Partition | None = None) -> IngestReport:
        """``partition``: only this worker's share of the files (``--partition K/N``); pruning
        then touches only paths of that share, never another worker's."""
        report = IngestReport(collection=rec.name, started_at=time.time())
        found = discover(roots)
        if partition is not None:
            found = partition.select(found)
        for p in found.missing:
            report.files.append(FileResult(path=str(p), status="failed", reason="not found"))
        for p in found.skipped:
            report.files.append(FileResult(path=str(p), status="skipped", reason=f"unsupported file type {p.suffix or '(none)'}"))

        versions = self.index.document_versions(rec)
        to_index: list[Plan] = []
        total = len(found.supported)
        for i, path in enumerate(found.supported):
            try:
                plan = plan_file(path, versions.get(str(path), []))
            except OSError as exc:
                report.files.append(FileResult(path=str(path), status="failed", reason=f"unreadable: {exc.strerror or exc}"))
                continue
            if plan.action == "index":
                to_index.append(plan)
                continue
            if plan.action == "cleanup":
                # An earlier run died between writing a new version and deleting the old one.
                self.index.remove_other_versions(rec, plan.keep.document_id, plan.keep.file_hash)
            report.files.append(FileResult(path=str(path), status="unchanged", chunks=plan.keep.n_chunks, pages=plan.keep.pages))
            if progress:
                progress(str(path), i + 1, total)

        done = total - len(to_index)
        for result in self._index_changed(rec, to_index):
            report.files.append(result)
            done += 1
            if progress:
                progress(result.path, done, total)

        if prune:
            seen = {str(p) for p in found.supported}
            for path, infos in versions.items():
                if (path not in seen and under_roots(path, roots) and not os.path.exists(path)
                        and (partition is None or partition.owns(path))):
                    self.index.remove_document(rec, infos[0].document_id)
                    report.files.append(FileResult(path=path, status="removed", chunks=infos[0].n_chunks))
        report.finished_at = time.time()
        return report

    def _index_changed(self, rec: CollectionRecord, plans: list[Plan]) -> Iterator[FileResult]:
        failures: list[FileResult] = []
        parse_seconds: dict[str, float] = {}
        warnings: dict[str, list[str]] = {}

        def parsed_items():
            for plan in plans:
                t0 = time.perf_counter()
                try:
                    parsed = self.parse(plan.path)
                except ParseError as exc:
                    failures.append(FileResult(path=str(plan.path), status="failed", reason=str(exc),
                                               seconds=round(time.perf_counter() - t0, 3)))
                    continue
                except Exception as exc:  # a parser bug must not end the batch
                    failures.append(FileResult(path=str(plan.path), status="failed",
                                               reason=f"internal error: {type(exc).__name__}: {exc}"))
                    continue
                parse_seconds[plan.source.path] = time.perf_counter() - t0
                if parsed.empty_pages:
                    pages = ", ".join(map(str, parsed.empty_pages[:20]))
                    warnings[plan.source.path] = [f"no text (scanned?) on page(s) {pages}"]
                yield plan.source, parsed

        def on_error(source: SourceFile, exc: Exception) -> None:
            reason = str(exc) if isinstance(exc, ParseError) else f"internal error: {type(exc).__name__}: {exc}"
            failures.append(FileResult(path=source.path, status="failed", reason=reason))

        for done in self.indexer.index_all(rec, parsed_items(), on_error=on_error):
            while failures:
                yield failures.pop(0)
            path = done.source.path
            yield FileResult(path=path, status="indexed", chunks=done.chunks, pages=done.parsed.pages,
                             seconds=round(done.seconds + parse_seconds.get(path, 0.0), 3),
                             warnings=warnings.get(path, []))
        yield from failures
