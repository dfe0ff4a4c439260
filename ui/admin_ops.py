"""What the admin pages do. Every function checks ``principal.is_admin`` itself, so a page
that forgot its guard still cannot act for a non-admin."""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from assistant.feedback import FeedbackRecord, Rating, write_beir
from ingest.report import FileResult, IngestReport
from retrieval.catalog import CollectionRecord, IngestRun
from retrieval.index import DocumentInfo
from retrieval.models import Principal
from ui.auth.bootstrap import forget_initial_password
from ui.auth.users import Role, UserRecord
from ui.services import Resources
from ui.uploads import collection_writer, upload_dir


class AdminOnlyError(PermissionError):
    def __init__(self) -> None:
        super().__init__("This page is for administrators.")


def require_admin(principal: Principal | None) -> Principal:
    if principal is None or not principal.is_admin:
        raise AdminOnlyError()
    return principal


# --- collections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionRow:
    rec: CollectionRecord
    documents: int
    chunks: int


def collections_overview(res: Resources, principal: Principal) -> list[CollectionRow]:
    require_admin(principal)
    ws = res.workspace
    rows = []
    for rec in ws.catalog.list_collections():
        exists = ws.index.exists(rec)
        rows.append(CollectionRow(rec, len(ws.index.list_documents(rec)) if exists else 0,
                                  ws.index.count(rec) if exists else 0))
    return rows


def create_collection(res: Resources, principal: Principal, name: str, read: list[str], write: list[str],
                      description: str = "") -> CollectionRecord:
    require_admin(principal)
    return res.workspace.catalog.create_collection(name, read, write, description)


def rename_collection(res: Resources, principal: Principal, collection: str, new_name: str) -> CollectionRecord:
    require_admin(principal)
    return res.workspace.catalog.rename_collection(collection, new_name)


def set_collection_groups(res: Resources, principal: Principal, collection: str, read: list[str],
                          write: list[str]) -> CollectionRecord:
    require_admin(principal)
    return res.workspace.catalog.set_groups(collection, read, write)


def delete_collection(res: Resources, principal: Principal, collection: str) -> CollectionRecord:
    require_admin(principal)
    ws = res.workspace
    with res.write_lock:
        rec = ws.catalog.get(collection)
        ws.index.drop(rec)
        ws.catalog.delete_collection(rec.id)
        shutil.rmtree(upload_dir(res, rec), ignore_errors=True)
    return rec


# --- documents -----------------------------------------------------------------------------


def list_documents(res: Resources, principal: Principal, collection: str) -> list[DocumentInfo]:
    require_admin(principal)
    ws = res.workspace
    rec = ws.catalog.get(collection)
    return ws.index.list_documents(rec) if ws.index.exists(rec) else []


def _doc(res: Resources, collection: str, document_id: str) -> tuple[CollectionRecord, DocumentInfo]:
    ws = res.workspace
    rec = ws.catalog.get(collection)
    info = ws.index.get_document(rec, document_id)
    if info is None:
        raise LookupError(f"no document {document_id} in {rec.name!r} (removed meanwhile?)")
    return rec, info


def remove_document(res: Resources, principal: Principal, collection: str, document_id: str) -> DocumentInfo:
    require_admin(principal)
    with res.write_lock:
        rec, info = _doc(res, collection, document_id)
        res.workspace.index.remove_document(rec, document_id)
        # An uploaded original belongs to Docent; a file on a share is not ours to delete.
        path = Path(info.path)
        if upload_dir(res, rec) in path.parents:
            path.unlink(missing_ok=True)
    return info


def set_document_disabled(res: Resources, principal: Principal, collection: str, document_id: str,
                          disabled: bool) -> None:
    require_admin(principal)
    with res.write_lock:
        rec, _ = _doc(res, collection, document_id)
        res.workspace.index.set_disabled(rec, document_id, disabled)


def set_document_access(res: Resources, principal: Principal, collection: str, document_id: str,
                        groups: list[str] | None) -> None:
    """``groups=None``: follow the collection's read groups again."""
    require_admin(principal)
    with res.write_lock:
        rec, _ = _doc(res, collection, document_id)
        res.workspace.index.set_access(rec, document_id, groups)


def reindex_document(res: Resources, principal: Principal, collection: str, document_id: str) -> FileResult:
    """Parse and embed the file again even if it did not change (a parser or chunking fix),
    keeping its access override and disabled state."""
    from ingest.batch import file_sha256
    from ingest.indexer import DocumentIndexer, SourceFile
    from ingest.sandbox import ParserPool

    require_admin(principal)
    s = res.settings
    ws = res.workspace
    started = time.time()
    # The lock a `docent ingest` of the collection holds: the two must not write it at once.
    with collection_writer(res, ws.catalog.get(collection)):
        rec, info = _doc(res, collection, document_id)
        rec = ws.ready_collection(rec.name)
        path = Path(info.path)
        try:
            stat = path.stat()
            source = SourceFile(str(path), file_sha256(path), stat.st_size, stat.st_mtime, info.access_groups)
            with ParserPool(timeout_s=s.parse_timeout_s, memory_mb=s.parse_memory_mb, max_file_mb=s.max_file_mb) as pool:
                parsed = pool.parse(path)
            indexer = DocumentIndexer(s, ws.index, ws.embedder)
            done = list(indexer.index_all(rec, [(source, parsed)]))
            if info.disabled:
                ws.index.set_disabled(rec, document_id, True)
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


# --- ingestion history ---------------------------------------------------------------------


def ingest_runs(res: Resources, principal: Principal, collection: str | None = None,
                failed_only: bool = False, since: float | None = None, limit: int = 200) -> list[IngestRun]:
    require_admin(principal)
    ws = res.workspace
    cid = ws.catalog.get(collection).id if collection else None
    runs = ws.catalog.runs(cid, limit=limit)
    if failed_only:
        runs = [r for r in runs if r.exit_code != 0]
    if since is not None:
        runs = [r for r in runs if r.started_at >= since]
    return runs


# --- users ---------------------------------------------------------------------------------


def list_users(res: Resources, principal: Principal) -> list[UserRecord]:
    require_admin(principal)
    return res.users.list()


def add_user(res: Resources, principal: Principal, username: str, password: str, role: Role,
             groups: list[str]) -> UserRecord:
    require_admin(principal)
    return res.users.add(username, password, role, groups)


def update_user(res: Resources, principal: Principal, username: str, role: Role, groups: list[str]) -> UserRecord:
    require_admin(principal)
    res.users.set_groups(username, groups)
    return res.users.set_role(username, role)


def set_user_password(res: Resources, principal: Principal, username: str, password: str) -> None:
    require_admin(principal)
    res.users.set_password(username, password)
    forget_initial_password(res.settings, username)


def remove_user(res: Resources, principal: Principal, username: str) -> UserRecord:
    require_admin(principal)
    if username == principal.user:
        raise ValueError("You cannot remove yourself; ask another administrator.")
    return res.users.remove(username)


# --- feedback ------------------------------------------------------------------------------


def list_feedback(res: Resources, principal: Principal, rating: Rating | None = None) -> list[FeedbackRecord]:
    require_admin(principal)
    return res.feedback.list(rating=rating)


def export_feedback_zip(res: Resources, principal: Principal, ratings: tuple[Rating, ...] = ("up", "down")) -> bytes:
    """The BEIR-layout evaluation set (corpus.jsonl, queries.jsonl, qrels/test.tsv) as a zip."""
    require_admin(principal)
    records = [r for r in reversed(res.feedback.list(limit=1_000_000)) if r.rating in ratings]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docent-feedback"
        write_beir(records, folder)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(folder.parent).as_posix())
    return buf.getvalue()
