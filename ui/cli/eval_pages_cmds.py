"""``docent eval-pages DOCS_DIR QUESTIONS``: does search find the evidence page, per search mode."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.page_evaluation import QuestionFormatError, load_questions
from retrieval.settings import Settings
from ui.usecases.page_evaluation import PageEvaluation, run_page_evaluation

MODES = ("dense", "sparse", "hybrid")
KEYS = ("page_hit@1", "page_hit@5", "page_hit@10", "filing_hit@1", "filing_hit@5", "mrr@10", "p50_ms", "p95_ms")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-pages",
        help="measure page-level retrieval (page/filing hit@1/5/10, MRR, latency) on a folder of documents",
        description="Ingest DOCS_DIR with the real batch job (the index is reused while the files, model, "
        "chunking and DOCENT_CONTEXTUAL_CHUNKS are unchanged), search each question of QUESTIONS (JSON lines: "
        "question, doc_name = file stem, evidence[].evidence_page_num 0-based) and count a hit when a passage "
        "of that file covers an evidence page. Questions on files not in DOCS_DIR are left out.",
    )
    p.add_argument("docs_dir", type=Path)
    p.add_argument("questions", type=Path)
    p.add_argument("--modes", default="hybrid", help=f"comma-separated, from {', '.join(MODES)} (default: hybrid)")
    p.add_argument("--rebuild", action="store_true", help="re-index even if a matching index exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        print(f"docent: --modes takes {', '.join(MODES)}", file=sys.stderr)
        return 2
    try:
        questions = load_questions(args.questions)
    except QuestionFormatError as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return 2
    if not args.docs_dir.is_dir():
        print(f"docent: {args.docs_dir}: not a folder", file=sys.stderr)
        return 2
    present = {p.stem for p in args.docs_dir.iterdir()}
    asked = [q for q in questions if q.doc in present]
    if not asked:
        print("docent: no question is about a file in DOCS_DIR", file=sys.stderr)
        return 2
    out = sys.stderr if args.json else sys.stdout

    def indexing(path: str, done: int, total: int) -> None:
        print(f"indexing {done}/{total}: {Path(path).name}", file=sys.stderr, flush=True)

    def built(b: PageEvaluation) -> None:
        print(f"{args.docs_dir.name}: {b.documents} documents, {b.pages} pages, {b.chunks} chunks "
              f"({'reused index' if b.reused else f'indexed in {b.build_seconds:.0f} s'}); {len(asked)} of "
              f"{len(questions)} questions; contextual_chunks={b.contextual_chunks}", file=out, flush=True)
        for failure in b.failed:
            print(f"failed: {failure}", file=out)

    run = run_page_evaluation(settings, args.docs_dir, asked, modes, rebuild=args.rebuild, progress=indexing,
                              on_built=built)
    if args.json:
        print(json.dumps(run.to_dict()))
    else:
        print(f"{'mode':<8}" + "".join(f"{k:>13}" for k in KEYS))
        for mode, m in run.results.items():
            print(f"{mode:<8}" + "".join(f"{m[k]:>13.4g}" for k in KEYS))
    return 0
