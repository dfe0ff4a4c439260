"""``docent eval DIR``: retrieval quality and latency on a BEIR-layout set, per search mode."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from retrieval.evaluation import ALL_MODES, METRIC_KEYS, BeirFormatError, load_beir
from retrieval.rerank import Reranker
from retrieval.settings import Settings
from ui.usecases.errors import RerankerUnavailableError
from ui.usecases.evaluation import run_evaluation


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure retrieval (nDCG@10, recall@5/10/100, MRR@10, latency) on a BEIR-layout folder",
        description="Index DIR/corpus.jsonl with the real ingestion code (reused while corpus, model and "
        "chunking are unchanged), run DIR/queries.jsonl judged in DIR/qrels/<split>.tsv through each search "
        "mode, and print the metrics. hybrid+rerank runs only when DOCENT_RERANKER_PATH is set.",
    )
    p.add_argument("dir", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--split", default="test", help="qrels file to judge against (default: test)")
    p.add_argument("--modes", help=f"comma-separated, from {', '.join(ALL_MODES)} (default: all available)")
    p.add_argument("--subset", metavar="I/N",
                   help="only queries whose id hashes to part I of N (e.g. 1/2), to tune on one part and check another")
    p.add_argument("--rebuild", action="store_true", help="re-index even if a matching index exists")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by mode")
    p.set_defaults(func=run)


def _subset(queries: dict[str, str], spec: str | None) -> dict[str, str]:
    if not spec:
        return queries
    try:
        part, parts = (int(x) for x in spec.split("/"))
        if not 1 <= part <= parts:
            raise ValueError
    except ValueError:
        raise BeirFormatError(f"--subset must look like I/N with 1 <= I <= N, got {spec!r}") from None
    return {q: t for q, t in queries.items()
            if int(hashlib.sha256(q.encode()).hexdigest(), 16) % parts == part - 1}


def _modes(spec: str | None, reranker: Reranker | None) -> list[str]:
    if not spec:
        return [m for m in ALL_MODES if m != "hybrid+rerank" or reranker is not None]
    modes = [m.strip() for m in spec.split(",") if m.strip()]
    bad = [m for m in modes if m not in ALL_MODES]
    if bad:
        raise BeirFormatError(f"unknown mode(s) {', '.join(bad)}: choose from {', '.join(ALL_MODES)}")
    if "hybrid+rerank" in modes and reranker is None:
        raise BeirFormatError("hybrid+rerank needs DOCENT_RERANKER_PATH (a local CrossEncoder folder); none is set")
    return modes


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        beir = load_beir(args.dir, args.split)
        reranker = Reranker.from_settings(settings)
        modes = _modes(args.modes, reranker)
        queries = _subset(beir.queries, args.subset)
    except (BeirFormatError, RerankerUnavailableError) as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return 2
    if not queries:
        print("docent: no judged query left to evaluate", file=sys.stderr)
        return 2
    last = [-1]

    def indexing(done: int, total: int) -> None:
        pct = done * 100 // max(total, 1)
        if pct // 10 != last[0] // 10:
            last[0] = pct
            print(f"indexing {beir.root.name}: {done}/{total} documents", file=sys.stderr, flush=True)

    def built(b) -> None:
        _say(args, f"{beir.root.name}: {b.documents} documents, {b.chunks} chunks "
                   f"({'reused index' if b.reused else f'indexed in {b.build_seconds:.0f} s'}); "
                   f"{len(queries)} {args.split} queries; chunk {settings.chunk_tokens}/{settings.chunk_overlap_tokens} "
                   f"tokens, RRF dense={settings.dense_weight:g} sparse={settings.sparse_weight:g}, "
                   f"prefetch {settings.prefetch_limit}")
        if reranker is None:
            _say(args, "hybrid+rerank: not run (no cross-encoder configured; set DOCENT_RERANKER_PATH)")

    results = run_evaluation(settings, beir, queries, modes, reranker, rebuild=args.rebuild, progress=indexing,
                             on_built=built).results
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{'mode':<14}" + "".join(f"{k:>11}" for k in METRIC_KEYS))
        for mode, metrics in results.items():
            print(f"{mode:<14}" + "".join(f"{metrics[k]:>11.4g}" for k in METRIC_KEYS))
    return 0
