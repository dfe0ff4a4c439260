"""Retrieval evaluation on a BEIR-layout set: the corpus indexed through the real ingestion code
into a private index of its own, every judged query searched through the real searcher.

Not a method of ``Docent``: it never touches the served collections, only the evaluation
index ``ingest.beir`` keeps under the data folder, and searches it as that index's admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from retrieval.evaluation import evaluate
from retrieval.models import Principal
from retrieval.settings import Settings

EVAL_PRINCIPAL = Principal(user="docent-eval", is_admin=True)
DEPTH = 100


@dataclass(frozen=True)
class EvaluationRun:
    documents: int
    chunks: int
    reused: bool
    build_seconds: float
    results: dict


def run_evaluation(settings: Settings, beir, queries: dict[str, str], modes: list[str], reranker,
                   rebuild: bool = False, progress: Callable[[int, int], None] | None = None,
                   on_built: Callable[[object], None] | None = None) -> EvaluationRun:
    """Index ``beir`` (reused while corpus, model and chunking hold), then rank ``queries`` in each
    of ``modes`` and score them against ``beir.qrels``."""
    from ingest.beir import doc_id_from_path, ensure_index
    from retrieval.embeddings import Embedder
    from retrieval.search import Searcher
    from retrieval.workspace import Workspace

    embedder = Embedder.from_settings(settings)
    built = ensure_index(settings, beir, embedder, rebuild=rebuild, progress=progress)
    if on_built is not None:
        on_built(built)
    with Workspace(built.settings) as ws:
        searcher = Searcher(built.settings, ws.index, embedder, reranker)

        def rank(text: str, mode: str) -> tuple[list[str], list[str]]:
            report = searcher.search(text, EVAL_PRINCIPAL, [built.collection], mode=mode, k=DEPTH)
            return [d for p in report.passages if (d := doc_id_from_path(p.path))], report.stages

        results = evaluate(rank, queries, beir.qrels, modes)
    return EvaluationRun(built.documents, built.chunks, built.reused, built.build_seconds, results)
