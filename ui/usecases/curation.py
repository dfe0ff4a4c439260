"""Curating the index, for administrators: collections and who may read and write them,
documents (remove, disable/enable, per-document access), the ingestion history.

Every method checks ``principal.is_admin`` itself, so a front end that forgot its guard still
cannot act for a non-admin; every index write holds the process's write lock."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from retrieval.catalog import CatalogError, CollectionRecord, IngestRun
from retrieval.index import DocumentInfo
from retrieval.models import Principal
from ui.usecases.errors import AdminOnlyError
from ui.usecases.library import matches_key


def require_admin(principal: Principal | None) -> Principal:
    if principal is None or not principal.is_admin:
        raise AdminOnlyError()
    return principal


@dataclass(frozen=True)
class CollectionRow:
    rec: CollectionRecord
    documents: int
    chunks: int


class Curation:
    # --- collections -----------------------------------------------------------------------
    def collections_overview(self, principal: Principal) -> list[CollectionRow]:
        require_admin(principal)
        ws = self.workspace
        rows = []
        for rec in ws.catalog.list_collections():
            exists = ws.index.exists(rec)
            rows.append(CollectionRow(rec, len(ws.index.list_documents(rec)) if exists else 0,
                                      ws.index.count(rec) if exists else 0))
        return rows

    def create_collection(self, principal: Principal, name: str, read: list[str] | None = None,
                          write: list[str] | None = None, description: str = "",
                          build_index: bool = False) -> CollectionRecord:
        """``build_index``: also create its physical index now (loads the embedding model)."""
        require_admin(principal)
        rec = self.workspace.catalog.create_collection(name, read, write, description)
        if build_index:
            with self.write_lock:
                rec = self.workspace.ready_collection(rec.name)
        return rec

    def rename_collection(self, principal: Principal, collection: str, new_name: str) -> CollectionRecord:
        require_admin(principal)
        return self.workspace.catalog.rename_collection(collection, new_name)

    def set_collection_groups(self, principal: Principal, collection: str, read: list[str] | None,
                              write: list[str] | None) -> CollectionRecord:
        require_admin(principal)
        return self.workspace.catalog.set_groups(collection, read, write)

    def delete_collection(self, principal: Principal, collection: str) -> CollectionRecord:
        require_admin(principal)
        ws = self.workspace
        with self.write_lock:
            rec = ws.catalog.get(collection)
            ws.index.drop(rec)
            ws.catalog.delete_collection(rec.id)
            shutil.rmtree(self.upload_dir(rec), ignore_errors=True)
        return rec

    def group_members(self, principal: Principal) -> dict[str, list[str]]:
        """Built-in users by group, for the admin pages' pickers and overview."""
        require_admin(principal)
        return self.users.groups()

    # --- documents -------------------------------------------------------------------------
    def list_documents(self, principal: Principal, collection: str) -> list[DocumentInfo]:
        """Every document of the collection, disabled ones included (an admin's view)."""
        require_admin(principal)
        ws = self.workspace
        rec = ws.catalog.get(collection)
        return ws.index.list_documents(rec) if ws.index.exists(rec) else []

    def admin_find_document(self, principal: Principal, collection: str, key: str) -> DocumentInfo:
        """Any document of the collection by id, path or file name (disabled ones too)."""
        for doc in self.list_documents(principal, collection):
            if matches_key(doc, key):
                return doc
        raise CatalogError(f"no document {key!r} in collection {self.workspace.catalog.get(collection).name!r}")

    def _doc(self, collection: str, document_id: str) -> tuple[CollectionRecord, DocumentInfo]:
        ws = self.workspace
        rec = ws.catalog.get(collection)
        info = ws.index.get_document(rec, document_id)
        if info is None:
            raise LookupError(f"no document {document_id} in {rec.name!r} (removed meanwhile?)")
        return rec, info

    def remove_document(self, principal: Principal, collection: str, document_id: str) -> DocumentInfo:
        require_admin(principal)
        with self.write_lock:
            rec, info = self._doc(collection, document_id)
            self.workspace.index.remove_document(rec, document_id)
            # An uploaded original belongs to Docent; a file on a share is not ours to delete.
            path = Path(info.path)
            if self.upload_dir(rec) in path.parents:
                path.unlink(missing_ok=True)
        return info

    def set_document_disabled(self, principal: Principal, collection: str, document_id: str,
                              disabled: bool) -> None:
        require_admin(principal)
        with self.write_lock:
            rec, _ = self._doc(collection, document_id)
            self.workspace.index.set_disabled(rec, document_id, disabled)

    def set_document_access(self, principal: Principal, collection: str, document_id: str,
                            groups: list[str] | None) -> None:
        """``groups=None``: follow the collection's read groups again."""
        require_admin(principal)
        with self.write_lock:
            rec, _ = self._doc(collection, document_id)
            self.workspace.index.set_access(rec, document_id, groups)

    # --- ingestion history -----------------------------------------------------------------
    def ingest_runs(self, principal: Principal, collection: str | None = None, failed_only: bool = False,
                    since: float | None = None, limit: int = 200) -> list[IngestRun]:
        require_admin(principal)
        ws = self.workspace
        cid = ws.catalog.get(collection).id if collection else None
        runs = ws.catalog.runs(cid, limit=limit)
        if failed_only:
            runs = [r for r in runs if r.exit_code != 0]
        if since is not None:
            runs = [r for r in runs if r.started_at >= since]
        return runs
