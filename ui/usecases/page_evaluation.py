"""Page-level retrieval evaluation on a folder of real documents: the folder ingested by the
real batch job into a private index of its own (``ingest.page_corpus``), every question searched
through the real searcher, each passage reduced to (file, page span) and scored.

Like ``evaluation``, not a method of ``Docent``: it never touches the served collections and
searches its own index as that index's admin."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from retrieval.models import Principal
from retrieval.page_evaluation import DEPTH, Hit, PageQuestion, doc_of, first_hit, run_questions
from retrieval.settings import Settings

if TYPE_CHECKING:
    from retrieval.search import Searcher

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
    # Per result key and question id: 0-based rank of the first page hit and filing hit (None: not in top 10).
    ranks: dict[str, dict[str, tuple[int | None, int | None]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def run_page_evaluation(settings: Settings, docs_dir: Path, questions: Sequence[PageQuestion], modes: Sequence[str],
                        rebuild: bool = False, progress: Callable[[str, int, int], None] | None = None,
                        on_built: Callable[[PageEvaluation], None] | None = None,
                        embedder=None, variants: Mapping[str, Mapping[str, object]] | None = None) -> PageEvaluation:
    """Index ``docs_dir`` (reused while files and settings hold), then score ``questions`` per mode
    (``embedder``: an already loaded model, else the configured one is loaded). ``variants``
    names search-time setting overrides (routing, prefetch depth, fusion weights) to compare on
    the one index; results are then keyed ``variant:mode``."""
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
        for name, update in (variants or {"": {}}).items():
            _check_search_only(update)
            searcher = Searcher(built.settings.model_copy(update=dict(update)), ws.index, embedder, None)
            for mode in modes:
                key = f"{name}:{mode}" if variants else mode
                rankings: dict[str, list[Hit]] = {}
                run.results[key] = run_questions(_ranker(searcher, built.collection, mode), questions,
                                                 rankings=rankings)
                run.ranks[key] = {q.qid: (first_hit(rankings[q.qid][:DEPTH], q, True),
                                          first_hit(rankings[q.qid][:DEPTH], q, False)) for q in questions}
    return run


def _ranker(searcher: Searcher, collection: str, mode: str) -> Callable[[str], list[Hit]]:
    def rank(text: str) -> list[Hit]:
        report = searcher.search(text, EVAL_PRINCIPAL, [collection], mode=mode, k=DEPTH)
        return [Hit(doc_of(p.path), p.page, p.page_end) for p in report.passages]

    return rank


# Settings that decide what the index holds: a variant changing them would measure an index it is not.
_INDEX_SETTINGS = frozenset({"chunk_tokens", "chunk_overlap_tokens", "contextual_chunks", "embedding_model",
                             "embedding_quantize", "data_dir", "qdrant_url", "qdrant_embedded_engine"})


def _check_search_only(update: Mapping[str, object]) -> None:
    bad = sorted(set(update) & _INDEX_SETTINGS)
    if bad:
        raise ValueError(f"variants change search settings only; {', '.join(bad)} decide the index")
