"""Uploads from a front end: saved under the data folder, then ingested in-process through the
same index this process holds (the embedded engine allows one opener, so no batch job can do it).

Every write of one collection from a front end (uploads, the admin's re-index of one document)
holds ``collection_writer``: this process's write lock and the locks a ``docent ingest`` run of
that collection holds, so the two never write it at once (against a Qdrant server both can
open the index) and a re-index of the collection excludes them as it excludes batch runs.
A same-name upload is a new version of the same document: ``Index.write_document`` carries its
access override and disabled flag forward."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ingest.discover import SUPPORTED_SUFFIXES
from ingest.report import FileResult, IngestReport
from retrieval.access import can_write_collection
from retrieval.catalog import CollectionRecord
from retrieval.models import Principal
from ui.usecases.errors import UploadNotAllowedError

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


def safe_name(name: str) -> str:
    """The file name only (never a path), with characters that trouble shells and URLs replaced."""
    base = Path(name.replace("\\", "/")).name.strip()
    base = re.sub(r"[^\w.\- ()]+", "_", base, flags=re.UNICODE).strip(" .")
    return base[:120]


def _save(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    tmp = path.with_name(f".{name}.part")
    tmp.write_bytes(data)
    tmp.replace(path)  # a reader never sees half a file
    return path


class Uploads:
    def upload_dir(self, rec: CollectionRecord) -> Path:
        return (self.settings.data_dir / "uploads" / rec.id).resolve()

    def upload(self, principal: Principal, collection: str, files: list[Upload],
               progress: Progress | None = None) -> IngestReport:
        """Save and index ``files`` into a collection ``principal`` may write; a file with the
        name of an earlier upload replaces it (a new version of the same document)."""
        from ingest.batch import BatchIngest
        from ingest.indexer import DocumentIndexer
        from ingest.sandbox import ParserPool

        settings = self.settings
        ws = self.workspace
        rec = ws.catalog.get(collection)
        if not can_write_collection(principal, rec):
            raise UploadNotAllowedError(f"You may not add documents to {rec.name!r}; ask an administrator "
                                        "for write access.")
        report = IngestReport(collection=rec.name, started_at=time.time())
        folder = self.upload_dir(rec)
        folder.mkdir(parents=True, exist_ok=True)
        accepted: list[tuple[str, bytes]] = []
        for f in files:
            name = safe_name(f.name)
            if not name or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                report.files.append(FileResult(path=f.name, status="skipped",
                                               reason="only PDF and DOCX files can be added"))
                continue
            if len(f.data) > settings.max_file_mb * 1024 * 1024:
                report.files.append(FileResult(path=f.name, status="failed",
                                               reason=f"too_large: over the {settings.max_file_mb} MB limit"))
                continue
            accepted.append((name, f.data))

        if accepted:
            # Files are replaced only under the lock: a refused upload leaves the indexed original.
            with self.collection_writer(rec):
                paths = [_save(folder, name, data) for name, data in accepted]
                rec = ws.ready_collection(rec.name)
                with ParserPool.from_settings(settings) as pool:
                    indexer = DocumentIndexer(settings, ws.index, ws.embedder)
                    batch = BatchIngest(ws.index, indexer, pool.parse).run(rec, paths, progress=progress)
                report.files.extend(batch.files)
                report.finished_at = time.time()
                ws.catalog.add_run(rec.id, report.started_at, report.finished_at, report.exit_code,
                                   f"upload by {principal.user}: " + report.summary_line(),
                                   report.to_json_dict() | {"source": "upload", "user": principal.user})
        report.finished_at = report.finished_at or time.time()
        return report
