"""Writing from files, for administrators: ingest folders into a collection (the cron job),
rebuild a collection's index and switch to it (reindex), parse one document again.

Each takes its lock before it opens the index, so an overlapping run exits at once naming the
holder. Every document version goes through ``Index.write_document``, which carries the
document's access override and disabled flag forward; none of these repeats that logic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ingest.partition import Partition
from ingest.report import FileResult, IngestReport
from retrieval.models import Principal
from ui.usecases.curation import require_admin

Progress = Callable[[str, int, int], None]


class Ingestion:
    def ingest_folder(self, principal: Principal, collection: str, roots: list[Path], *, prune: bool = False,
                      progress: Progress | None = None, partition: Partition | None = None) -> IngestReport:
        """Bring ``collection`` (created if missing) in step with ``roots``; the run is recorded
        in the catalog's history."""
        from ingest.batch import BatchIngest
        from ingest.indexer import DocumentIndexer
        from ingest.run_locks import ingest_locks
        from ingest.sandbox import ParserPool

        require_admin(principal)
        settings = self.settings
        settings.lock_dir.mkdir(parents=True, exist_ok=True)
        # Per collection and partition, so disjoint jobs can share a Qdrant server; a re-index of
        # the collection excludes every run (ingest/run_locks.py).
        with ingest_locks(settings, collection, partition), self.write_lock:
            ws = self.workspace
            with ParserPool.from_settings(settings) as pool:
                rec = ws.ready_collection(collection, create=True)
                indexer = DocumentIndexer(settings, ws.index, ws.embedder)
                report = BatchIngest(ws.index, indexer, pool.parse).run(rec, roots, prune=prune, progress=progress,
                                                                       partition=partition)
            extra = {} if principal.user == "local-admin" else {"user": principal.user}
            ws.catalog.add_run(rec.id, report.started_at, report.finished_at, report.exit_code, report.summary_line(),
                               report.to_json_dict() | extra)
        return report

    def reindex(self, principal: Principal, collection: str, *, keep_missing: bool = False,
                allow_empty: bool = False, grace_s: float = 5.0, progress: Progress | None = None):
        """Rebuild ``collection``'s index from the original files and switch to it atomically;
        returns the ``ReindexReport`` (raises ``ReindexError`` when the live index stays)."""
        from ingest.reindex import Reindexer
        from ingest.run_locks import reindex_lock
        from ingest.sandbox import ParserPool

        require_admin(principal)
        with reindex_lock(self.settings, collection):
            ws = self.workspace
            with ParserPool.from_settings(self.settings) as pool:
                rec = ws.catalog.get(collection)
                return Reindexer(ws.index, ws.embedder, pool.parse, keep_missing=keep_missing,
                                 allow_empty=allow_empty, grace_s=grace_s, progress=progress).run(rec)

    def reindex_document(self, principal: Principal, collection: str, document_id: str) -> FileResult:
        """Parse and embed one file again even if it did not change (a parser or chunking fix)."""
        from ingest.batch import file_sha256
        from ingest.indexer import DocumentIndexer, SourceFile
        from ingest.sandbox import ParserPool

        require_admin(principal)
        ws = self.workspace
        started = time.time()
        with self.collection_writer(ws.catalog.get(collection)):
            rec, info = self._doc(collection, document_id)
            rec = ws.ready_collection(rec.name)
            path = Path(info.path)
            try:
                stat = path.stat()
                source = SourceFile(str(path), file_sha256(path), stat.st_size, stat.st_mtime)
                with ParserPool.from_settings(self.settings) as pool:
                    parsed = pool.parse(path)
                indexer = DocumentIndexer(self.settings, ws.index, ws.embedder)
                done = list(indexer.index_all(rec, [(source, parsed)]))
                result = FileResult(path=str(path), status="indexed", chunks=done[0].chunks, pages=parsed.pages,
                                    seconds=round(time.time() - started, 3))
            except OSError as exc:
                result = FileResult(path=str(path), status="failed", reason=f"unreadable: {exc.strerror or exc}")
            except Exception as exc:  # ParseError and friends: reported, like the batch job does
                result = FileResult(path=str(path), status="failed", reason=str(exc))
            report = IngestReport(collection=rec.name, started_at=started, finished_at=time.time(), files=[result])
            ws.catalog.add_run(rec.id, report.started_at, report.finished_at, report.exit_code,
                               f"re-index by {principal.user}: " + report.summary_line(),
                               report.to_json_dict() | {"source": "reindex", "user": principal.user})
        return result
