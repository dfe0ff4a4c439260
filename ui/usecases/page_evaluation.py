"""Page-level retrieval evaluation on a folder of real documents: the folder ingested by the
real batch job into a private index of its own (``ingest.page_corpus``), every question searched
through the real searcher, each passage reduced to (file, page span) and scored.

Like ``evaluation``, not a method of ``Docent``: it never touches the served collections and
searches its own index as that index's admin."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from retrieval.models import Principal
from retrieval.page_evaluation import DEPTH, Hit, PageQuestion, doc_of, run_questions
from retrieval.settings import Settings

EVAL_PRINCIPAL = Principal(user="docent-eval", is_admin=True)


@dataclass
class PageEvaluation:
    documents: int
    pages: int
    chunks: int
    build_seconds: float
    reused: bool
    contextual_chunks: bool
    failed: list[str] = field(default_factory=list)
    results: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def run_page_evaluation(settings: Settings, docs_dir: Path, questions: Sequence[PageQuestion], modes: Sequence[str],
                        rebuild: bool = False, progress: Callable[[str, int, int], None] | None = None,
                        on_built: Callable[[PageEvaluation], None] | None = None,
                        embedder=None) -> PageEvaluation:
    """Index ``docs_dir`` (reused while files and settings hold), then score ``questions`` per mode
    (``embedder``: an already loaded model, else the configured one is loaded)."""
    from ingest.page_corpus import ensure_folder_index
    from retrieval.embeddings import Embedder
    from retrieval.search import Searcher
    from retrieval.workspace import Workspace

    embedder = embedder or Embedder.from_settings(settings)
    built = ensure_folder_index(settings, docs_dir, embedder, rebuild=rebuild, progress=progress)
    run = PageEvaluation(built.documents, built.pages, built.chunks, built.build_seconds, built.reused,
                         settings.contextual_chunks, list(built.failed))
    if on_built is not None:
        on_built(run)
    with Workspace(built.settings, embedder=embedder) as ws:
        searcher = Searcher(built.settings, ws.index, embedder, None)
        for mode in modes:
            def rank(text: str, mode: str = mode) -> list[Hit]:
                report = searcher.search(text, EVAL_PRINCIPAL, [built.collection], mode=mode, k=DEPTH)
                return [Hit(doc_of(p.path), p.page, p.page_end) for p in report.passages]

            run.results[mode] = run_questions(rank, questions)
    return run
