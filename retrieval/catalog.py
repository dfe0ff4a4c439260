"""The catalog: Docent collections (names, access groups, index version) and ingestion history.

Kept in SQLite (WAL) under the data directory, beside the index: small, transactional, and
safe for several processes on one machine (the UI and cron jobs). Chunks themselves live only
in Qdrant; nothing here duplicates them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import ContextManager

from pydantic import BaseModel, Field

from retrieval.private_files import private_sqlite

EVERYONE = "everyone"
_NAME_RE = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    read_groups TEXT NOT NULL,
    write_groups TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    model_id TEXT,
    dim INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    exit_code INTEGER NOT NULL,
    summary TEXT NOT NULL,
    report TEXT NOT NULL
);
"""


class CatalogError(ValueError):
    """A user-facing problem with a catalog request (bad name, unknown collection, …)."""


class CollectionRecord(BaseModel):
    id: str
    name: str
    description: str = ""
    read_groups: list[str] = Field(default_factory=lambda: [EVERYONE])
    write_groups: list[str] = Field(default_factory=list)
    version: int = 1
    model_id: str | None = None
    dim: int | None = None
    created_at: float = 0.0


class IngestRun(BaseModel):
    id: int
    collection_id: str
    started_at: float
    finished_at: float
    exit_code: int
    summary: str
    report: dict


def _slug(name: str) -> str:
    """Ids are ASCII (Qdrant collection names), stable across renames, and derived from the
    name so the same collection built twice gets the same ids all the way down to chunks."""
    ascii_part = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:24] or "c"
    return f"{ascii_part}_{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


class Catalog:
    def __init__(self, path: Path):
        self._path = path
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> ContextManager[sqlite3.Connection]:
        return private_sqlite(self._path)

    # --- collections ------------------------------------------------------------
    def create_collection(
        self,
        name: str,
        read_groups: list[str] | None = None,
        write_groups: list[str] | None = None,
        description: str = "",
    ) -> CollectionRecord:
        name = name.strip()
        if not _NAME_RE.match(name):
            raise CatalogError(f"invalid collection name {name!r}: use letters, digits, space, '.', '-', '_' (max 64)")
        if self.find(name):
            raise CatalogError(f"collection {name!r} already exists")
        ids = {c.id for c in self.list_collections()}
        rec_id = _slug(name)
        # A renamed collection keeps its id, so its old name's id may be taken.
        suffix = 2
        while rec_id in ids:
            rec_id, suffix = f"{_slug(name)}_{suffix}", suffix + 1
        rec = CollectionRecord(
            id=rec_id,
            name=name,
            description=description,
            read_groups=read_groups if read_groups is not None else [EVERYONE],
            write_groups=write_groups or [],
            created_at=time.time(),
        )
        with self._connect() as db:
            db.execute(
                "INSERT INTO collections (id, name, description, read_groups, write_groups, version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec.id, rec.name, rec.description, json.dumps(rec.read_groups), json.dumps(rec.write_groups),
                 rec.version, rec.created_at),
            )
        return rec

    def list_collections(self) -> list[CollectionRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM collections ORDER BY name").fetchall()
        return [self._record(r) for r in rows]

    def find(self, name_or_id: str) -> CollectionRecord | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM collections WHERE name = ? OR id = ?", (name_or_id, name_or_id)
            ).fetchone()
        return self._record(row) if row else None

    def get(self, name_or_id: str) -> CollectionRecord:
        rec = self.find(name_or_id)
        if rec is None:
            known = ", ".join(c.name for c in self.list_collections()) or "none yet"
            raise CatalogError(f"no collection named {name_or_id!r} (known: {known})")
        return rec

    def rename_collection(self, name: str, new_name: str) -> CollectionRecord:
        rec = self.get(name)
        if not _NAME_RE.match(new_name.strip()):
            raise CatalogError(f"invalid collection name {new_name!r}")
        if self.find(new_name.strip()):
            raise CatalogError(f"collection {new_name!r} already exists")
        with self._connect() as db:
            db.execute("UPDATE collections SET name = ? WHERE id = ?", (new_name.strip(), rec.id))
        return self.get(rec.id)

    def set_groups(
        self, name: str, read_groups: list[str] | None = None, write_groups: list[str] | None = None
    ) -> CollectionRecord:
        rec = self.get(name)
        with self._connect() as db:
            if read_groups is not None:
                db.execute("UPDATE collections SET read_groups = ? WHERE id = ?", (json.dumps(read_groups), rec.id))
            if write_groups is not None:
                db.execute("UPDATE collections SET write_groups = ? WHERE id = ?", (json.dumps(write_groups), rec.id))
        return self.get(rec.id)

    def set_model(self, collection_id: str, model_id: str, dim: int) -> None:
        with self._connect() as db:
            db.execute("UPDATE collections SET model_id = ?, dim = ? WHERE id = ?", (model_id, dim, collection_id))

    def set_version(self, collection_id: str, version: int, model_id: str, dim: int) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE collections SET version = ?, model_id = ?, dim = ? WHERE id = ?",
                (version, model_id, dim, collection_id),
            )

    def delete_collection(self, name: str) -> CollectionRecord:
        rec = self.get(name)
        with self._connect() as db:
            db.execute("DELETE FROM collections WHERE id = ?", (rec.id,))
        return rec

    @staticmethod
    def _record(row: sqlite3.Row) -> CollectionRecord:
        data = dict(row)
        data["read_groups"] = json.loads(data["read_groups"])
        data["write_groups"] = json.loads(data["write_groups"])
        return CollectionRecord(**data)

    # --- ingestion history ----------------------------------------------------------
    def add_run(self, collection_id: str, started_at: float, finished_at: float, exit_code: int,
                summary: str, report: dict) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO ingest_runs (collection_id, started_at, finished_at, exit_code, summary, report)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (collection_id, started_at, finished_at, exit_code, summary, json.dumps(report)),
            )
            return int(cur.lastrowid)

    def runs(self, collection_id: str | None = None, limit: int = 100) -> list[IngestRun]:
        query = "SELECT * FROM ingest_runs"
        args: tuple = ()
        if collection_id:
            query += " WHERE collection_id = ?"
            args = (collection_id,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, args + (limit,)).fetchall()
        return [IngestRun(**{**dict(r), "report": json.loads(r["report"])}) for r in rows]
