"""An opened Docent index: settings, store, catalog and (lazily) the embedding model together.

The one place that wires these, so the CLI, the UI and the tests open the index the same way.
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Sequence

from retrieval.catalog import Catalog, CollectionRecord
from retrieval.index import Index, RemovalHook
from retrieval.settings import Settings
from retrieval.store.base import VectorStore
from retrieval.store.factory import open_store


class Workspace:
    def __init__(self, settings: Settings, store: VectorStore | None = None, embedder=None,
                 on_document_removed: Sequence[RemovalHook] = ()):
        self.settings = settings
        if embedder is not None:
            # Tests and long-lived processes share one loaded model across workspaces.
            self.__dict__["embedder"] = embedder
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.catalog_path)
        self.store = store if store is not None else open_store(settings)
        self.index = Index(settings, self.store, self.catalog, on_document_removed)

    @cached_property
    def embedder(self):
        # Imported here: loading torch costs seconds that admin commands should not pay.
        from retrieval.embeddings import Embedder

        return Embedder.from_settings(self.settings)

    def collection(self, name: str, create: bool = False) -> CollectionRecord:
        rec = self.catalog.find(name)
        if rec is None and create:
            rec = self.catalog.create_collection(name)
        return rec or self.catalog.get(name)  # get() raises, naming the known collections

    def ready_collection(self, name: str, create: bool = False) -> CollectionRecord:
        """The collection with its physical index in place, checked against the embedding model."""
        rec = self.collection(name, create=create)
        return self.index.ensure(rec, self.embedder.model_id, self.embedder.dim)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
