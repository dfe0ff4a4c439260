"""Re-index a collection without downtime: build a new physical index, then switch the alias.

Why: after changing the embedding model, the chunking, or the shard/replica settings, every
document must be parsed, chunked and embedded again. Readers must never see a half-built
index, nor a mix of two.

How (each collection has a stable alias ``<prefix><id>`` pointing at ``<alias>_v<version>``):

1. the documents the live index holds are listed (path, version, disabled flag, access
   override); leftovers of an interrupted earlier re-index are dropped;
2. ``_v<next>`` is created (with the current dimension and shard/replica settings) and filled
   from the original files through the normal ``DocumentIndexer``, pinned to that name;
   disabled flags and access overrides are carried over;
3. catch-up: changes made to the live index meanwhile (uploads, disable/enable, access edits
   from the UI) are replayed into the new one until both agree;
4. the alias is switched in one atomic operation — a query resolves the alias once, so it runs
   entirely on the old index or entirely on the new one — and the catalog records the new
   version and model;
5. after a grace period (queries that resolved the old name just before the switch finish),
   the old physical index is dropped.

Until step 4 the old index serves everything, and any failure drops the new one and leaves
the old untouched. Documents whose files vanished (or no longer parse) are reported; with
``keep_missing`` their stored passages are re-embedded as they are instead of being dropped.
Ingestion of the collection is excluded meanwhile by ``ingest.run_locks.reindex_lock``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, Field

from ingest.batch import file_sha256
from ingest.errors import ParseError
from ingest.indexer import DocumentIndexer, PassageEmbedder, SourceFile, chunk_embedding_text
from ingest.parsed import ParsedDocument
from retrieval import sparse
from retrieval.catalog import CollectionRecord
from retrieval.index import DocumentInfo, Index

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
MAX_CATCH_UP_ROUNDS = 5


class ReindexError(RuntimeError):
    """The re-index cannot be done as asked; the live index is unchanged."""


class PinnedIndex(Index):
    """An :class:`Index` whose every read and write goes to one physical collection instead of
    the alias: what a build (or a look at the old index) needs, with the same document logic."""

    def __init__(self, base: Index, physical: str):
        super().__init__(base.settings, base.store, base.catalog, base.on_removed)
        self.pinned = physical

    def target(self, rec: CollectionRecord) -> str:
        return self.pinned


class ReindexedFile(BaseModel):
    path: str
    document_id: str
    status: Literal["rebuilt", "carried_over", "missing", "failed", "removed"]
    reason: str | None = None
    chunks: int = 0


class ReindexReport(BaseModel):
    collection: str
    old_index: str
    new_index: str
    model_id: str
    dim: int
    started_at: float
    finished_at: float = 0.0
    switched: bool = False
    caught_up: int = Field(default=0, description="Changes to the live index replayed into the new one.")
    files: list[ReindexedFile] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("rebuilt", "carried_over", "missing", "failed", "removed")}
        for f in self.files:
            out[f.status] += 1
        return out

    @property
    def exit_code(self) -> int:
        c = self.counts
        return 1 if c["missing"] or c["failed"] else 0

    def summary_line(self) -> str:
        c = self.counts
        state = f"switched {self.old_index} -> {self.new_index}" if self.switched else "NOT switched"
        return (f"{self.collection}: {c['rebuilt']} rebuilt, {c['carried_over']} carried over, {c['missing']} missing, "
                f"{c['failed']} failed, {self.caught_up} caught up; {state} "
                f"in {self.finished_at - self.started_at:.1f} s")

    def to_json_dict(self) -> dict:
        return {**self.model_dump(), "counts": self.counts, "exit_code": self.exit_code}


def _latest(infos: list[DocumentInfo]) -> DocumentInfo:
    return max(infos, key=lambda i: i.indexed_at)


def _flags(info: DocumentInfo) -> tuple:
    return (info.file_hash, info.disabled, tuple(info.access_groups) if info.access_groups is not None else None)


class Reindexer:
    """``Reindexer(index, embedder, parse).run(rec)``; ``parse`` is ``ParserPool.parse`` in the
    CLI (sandboxed) or ``parse_file`` in-process."""

    def __init__(self, index: Index, embedder: PassageEmbedder, parse: Callable[[Path], ParsedDocument], *,
                 keep_missing: bool = False, allow_empty: bool = False, grace_s: float = 5.0,
                 progress: ProgressFn | None = None,
                 on_switch: Callable[[str, str], None] | None = None):
        self.index = index
        self.store = index.store
        self.embedder = embedder
        self.parse = parse
        self.keep_missing = keep_missing
        self.allow_empty = allow_empty
        self.grace_s = grace_s
        self.progress = progress
        self.on_switch = on_switch  # tests and the UI hear the moment of the switch

    # --- naming -----------------------------------------------------------------------------
    def _versions_present(self, rec: CollectionRecord) -> dict[int, str]:
        pattern = re.compile(re.escape(self.index.alias(rec)) + r"_v(\d+)$")
        found = {}
        for name in self.store.list_collections():
            m = pattern.match(name)
            if m:
                found[int(m.group(1))] = name
        return found

    # --- the run ----------------------------------------------------------------------------
    def run(self, rec: CollectionRecord) -> ReindexReport:
        old = self.index.target(rec)
        present = self._versions_present(rec)
        if old not in present.values():
            raise ReindexError(f"collection {rec.name!r} has no index yet: nothing to re-index "
                               f"(run `docent ingest FOLDER --collection {rec.name}` first)")
        old_version = next(v for v, n in present.items() if n == old)
        for version, name in present.items():
            if name != old:  # an interrupted earlier re-index: never served, safe to drop
                log.warning("dropping leftover index %s of %s", name, rec.name)
                self.store.drop_collection(name)
        new_version = max([old_version, rec.version, *present]) + 1
        new = self.index.physical(rec, new_version)
        report = ReindexReport(collection=rec.name, old_index=old, new_index=new, model_id=self.embedder.model_id,
                               dim=self.embedder.dim, started_at=time.time())
        old_view = PinnedIndex(self.index, old)
        new_view = PinnedIndex(self.index, new)

        self.store.ensure_collection(new, self.embedder.dim)
        try:
            snapshot = {p: _latest(v) for p, v in old_view.document_versions(rec).items()}
            self._build(rec, snapshot, old_view, new_view, report)
            if snapshot and not any(f.status in ("rebuilt", "carried_over") for f in report.files) and not self.allow_empty:
                first = ", ".join(f.path for f in report.files[:3])
                raise ReindexError(
                    f"none of the {len(snapshot)} documents of {rec.name!r} could be rebuilt (e.g. {first}); "
                    "the live index is unchanged. Are the files' folders mounted? (--allow-empty switches anyway)")
            for _ in range(MAX_CATCH_UP_ROUNDS):
                changed = self._catch_up(rec, snapshot, old_view, new_view, report)
                if not changed:
                    break
            self.store.set_alias(self.index.alias(rec), new)
        except BaseException:
            self.store.drop_collection(new)
            raise
        report.switched = True
        self.index.catalog.set_version(rec.id, new_version, self.embedder.model_id, self.embedder.dim)
        if self.on_switch is not None:
            self.on_switch(old, new)
        # A writer that resolved the alias just before the switch may still land in the old
        # index: replay once more, then give in-flight queries the grace period. The switch is
        # done; a failure from here on leaves the old index behind (the next re-index drops it).
        try:
            self._catch_up(rec, snapshot, old_view, new_view, report)
            if self.grace_s > 0:
                time.sleep(self.grace_s)
            self.store.drop_collection(old)
        except Exception as exc:
            log.warning("re-index of %s switched, but cleaning up %s failed: %s", rec.name, old, exc)
            report.notes.append(f"switched, but the old index {old} was not dropped: {exc}")
        report.finished_at = time.time()
        return report

    def _build(self, rec: CollectionRecord, snapshot: dict[str, DocumentInfo], old_view: Index, new_view: Index,
               report: ReindexReport) -> None:
        paths = sorted(snapshot)
        report.files.extend(self._rebuild(rec, [snapshot[p] for p in paths], old_view, new_view, len(paths)))

    def _rebuild(self, rec: CollectionRecord, infos: list[DocumentInfo], old_view: Index, new_view: Index,
                 total: int) -> list[ReindexedFile]:
        """Index ``infos`` from their files into ``new_view``; flags follow the live index."""
        results: list[ReindexedFile] = []
        lost: list[tuple[DocumentInfo, str]] = []
        by_path = {i.path: i for i in infos}

        def items() -> Iterable[tuple[SourceFile, ParsedDocument]]:
            for info in infos:
                path = Path(info.path)
                if not os.path.exists(path):
                    lost.append((info, "file no longer exists"))
                    continue
                try:
                    stat = path.stat()
                    source = SourceFile(info.path, file_sha256(path), stat.st_size, stat.st_mtime, info.access_groups)
                    parsed = self.parse(path)
                except ParseError as exc:
                    lost.append((info, str(exc)))
                    continue
                except OSError as exc:
                    lost.append((info, f"unreadable: {exc.strerror or exc}"))
                    continue
                yield source, parsed

        def on_error(source: SourceFile, exc: Exception) -> None:
            lost.append((by_path[source.path], str(exc) if isinstance(exc, ParseError) else f"internal error: {exc}"))

        indexer = DocumentIndexer(self.index.settings, new_view, self.embedder)
        for done in indexer.index_all(rec, items(), on_error=on_error):
            info = by_path[done.source.path]
            if info.disabled:
                new_view.set_disabled(rec, info.document_id, True)
            results.append(ReindexedFile(path=info.path, document_id=info.document_id, status="rebuilt",
                                         chunks=done.chunks))
            if self.progress:
                self.progress(info.path, len(results) + len(lost), total)
        for info, reason in lost:
            if self.keep_missing and self._carry_over(rec, info, old_view, new_view):
                results.append(ReindexedFile(path=info.path, document_id=info.document_id, status="carried_over",
                                             reason=f"{reason}; stored passages re-embedded", chunks=info.n_chunks))
            else:
                status = "missing" if reason == "file no longer exists" else "failed"
                results.append(ReindexedFile(path=info.path, document_id=info.document_id, status=status, reason=reason))
            if self.progress:
                self.progress(info.path, len(results), total)
        return results

    def _carry_over(self, rec: CollectionRecord, info: DocumentInfo, old_view: Index, new_view: Index) -> bool:
        """Re-embed the document's stored chunks (their chunking stays as it was)."""
        chunks = old_view.document_chunks(rec, info.document_id)
        if not chunks or chunks[0].chunk_index != 0:
            return False
        texts = [chunk_embedding_text(c) for c in chunks]
        dense = self.embedder.embed_passages(texts)
        new_view.write_document(rec, chunks, dense, [sparse.encode_document(t) for t in texts])
        return True

    def _catch_up(self, rec: CollectionRecord, snapshot: dict[str, DocumentInfo], old_view: Index,
                  new_view: Index, report: ReindexReport) -> int:
        """Replay into the new index what changed in the old one since ``snapshot`` (which is
        updated); returns how many documents changed."""
        current = {p: _latest(v) for p, v in old_view.document_versions(rec).items()}
        changed = 0
        redo: list[DocumentInfo] = []
        for path, info in current.items():
            before = snapshot.get(path)
            if before is not None and _flags(before) == _flags(info):
                continue
            changed += 1
            if before is None or before.file_hash != info.file_hash:
                redo.append(info)  # a new document or a new version: from its file
            else:
                new_view.set_disabled(rec, info.document_id, info.disabled)
                new_view.set_access(rec, info.document_id, info.access_groups)
        for path in set(snapshot) - set(current):
            changed += 1
            new_view.remove_document(rec, snapshot[path].document_id)
            report.files = [f for f in report.files if f.path != path]
            report.files.append(ReindexedFile(path=path, document_id=snapshot[path].document_id, status="removed",
                                              reason="removed from the live index during the re-index"))
        if redo:
            done = {f.path: f for f in self._rebuild(rec, redo, old_view, new_view, len(redo))}
            # The latest outcome per path replaces the first build's.
            report.files = [f for f in report.files if f.path not in done] + list(done.values())
        snapshot.clear()
        snapshot.update(current)
        report.caught_up += changed
        return changed
