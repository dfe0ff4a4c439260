"""Page-level retrieval per lever (issue 18): each retrieval lever on or off, on one index.

    .venv/bin/python benchmarks/page_levers.py DOCS_DIR QUESTIONS [--contextual off,on]
        [--variants base,route,...] [--modes hybrid] [--out benchmarks/results/pages-levers.json]

For each contextual-chunks setting (an index of its own, built by the real batch job once and
reused while its key holds, see benchmarks/pages/README.md) every variant runs the questions
through the real searcher: page hit@1/5/10, filing hit@k, MRR@10, p50/p95 search latency, and
per question the rank of the first page hit, so two levers can be compared question by question.
Variants are search-time settings only (no re-index): routing, its depth and weight, prefetch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# benchmarks/retrieval.py would shadow the real ``retrieval`` package: the repository root goes first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from retrieval.embeddings import Embedder  # noqa: E402
from retrieval.page_evaluation import load_questions  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from ui.usecases.page_evaluation import run_page_evaluation  # noqa: E402

VARIANTS: dict[str, dict[str, object]] = {
    "base": {"route_documents": False},
    "route": {"route_documents": True},
    "route-top1": {"route_documents": True, "route_top_documents": 1},
    "route-top5": {"route_documents": True, "route_top_documents": 5},
    "route-w2": {"route_documents": True, "route_weight": 2.0},
    "route-w4": {"route_documents": True, "route_weight": 4.0},
    "deep": {"route_documents": False, "prefetch_limit": 300},
}
KEYS = ("page_hit@1", "page_hit@5", "page_hit@10", "filing_hit@1", "filing_hit@5", "mrr@10", "p50_ms", "p95_ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("docs_dir", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--contextual", default="on", help="comma-separated from off,on (one index each)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"from {', '.join(VARIANTS)}")
    ap.add_argument("--modes", default="hybrid")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pages-levers.json"))
    args = ap.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}")
    modes = [m for m in args.modes.split(",") if m]
    questions = [q for q in load_questions(args.questions)
                 if (args.docs_dir / f"{q.doc}.pdf").exists() or (args.docs_dir / f"{q.doc}.docx").exists()]
    base = Settings()
    embedder = Embedder.from_settings(base)
    out: dict[str, object] = {"docs_dir": str(args.docs_dir), "questions": len(questions), "cpu_count": os.cpu_count(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "variants": {n: VARIANTS[n] for n in names},
                              "runs": {}}
    for flag in [c for c in args.contextual.split(",") if c]:
        settings = base.model_copy(update={"contextual_chunks": flag == "on"})
        run = run_page_evaluation(settings, args.docs_dir, questions, modes, embedder=embedder,
                                  variants={n: VARIANTS[n] for n in names},
                                  progress=lambda p, i, n: print(f"indexing {i}/{n}: {Path(p).name}", file=sys.stderr))
        out["runs"][f"contextual-{flag}"] = run.to_dict()
        print(f"contextual {flag}: {run.documents} documents, {run.pages} pages, {run.chunks} chunks, "
              f"{'reused' if run.reused else f'built in {run.build_seconds:.0f} s'}; {len(questions)} questions")
        print(f"{'variant:mode':<22}" + "".join(f"{k:>13}" for k in KEYS))
        for key, m in run.results.items():
            print(f"{key:<22}" + "".join(f"{m[k]:>13.4g}" for k in KEYS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
