"""``docent eval-answers DIR``: answer quality (correct, refused, cited, supported, fast) on a question set.

Only argument parsing and printing live here: the set, its index and the run come from
``ui.usecases.answer_sets``, the scoring from ``assistant.answer_eval``, and every question takes the
path ``docent ask`` takes (``Docent.ask``: search, answerer, guard, the same model choice).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant import answer_eval
from retrieval.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-answers", help="measure answers (correct, false refusals, citations, support, TTFT) on a question set",
        description="Index the set's documents with the real ingestion code, ask every question through the "
        "same path as `docent ask` (DOCENT_LLM_BASE_URL, the embedded model, or extractive with "
        "DOCENT_LOCAL_LLM=none) and score the answers. See benchmarks/answers/README.md.")
    p.add_argument("dir", type=Path, help="question set folder (set.json, questions.jsonl)")
    p.add_argument("--split", choices=("tune", "check", "all"), default="all", help="questions to ask (default all)")
    p.add_argument("--limit", type=int, help="ask only the first N questions (after --split)")
    p.add_argument("--ids", help="comma-separated question ids to ask")
    p.add_argument("--source", type=Path, help="data folder of a beir set (overrides set.json's source)")
    p.add_argument("-k", type=int, default=6, help="passages given to the model (default 6, as docent ask)")
    p.add_argument("--max-tokens", type=int, help="answer token cap (default DOCENT_LLM_ANSWER_TOKENS)")
    p.add_argument("--out", type=Path, help="write the full report (figures and every answer) as JSON here")
    p.add_argument("--rebuild", action="store_true", help="re-index the set's documents")
    p.add_argument("--quiet", action="store_true", help="no line per question")
    p.set_defaults(func=run)


def _select(items: list[answer_eval.QuestionItem], args: argparse.Namespace) -> list[answer_eval.QuestionItem]:
    if args.split != "all":
        items = [i for i in items if i.split == args.split]
    if args.ids:
        wanted = {x.strip() for x in args.ids.split(",")}
        items = [i for i in items if i.id in wanted]
    return items[: args.limit] if args.limit else items


def run(settings: Settings, args: argparse.Namespace) -> int:
    from ui.usecases.answer_sets import evaluate_answers, load_set

    try:
        aset = load_set(args.dir, args.source, settings.max_file_mb)
    except answer_eval.QuestionFileError as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return 2
    items = _select(aset.items, args)
    if not items:
        print("docent: no question left to ask", file=sys.stderr)
        return 2

    def started(aset, reused: bool, choice) -> None:
        print(f"{aset.name}: {len(aset.documents)} documents ({'reused index' if reused else 'indexed'}), "
              f"{len(items)} questions, model: {choice.source} {choice.notice or ''}".rstrip(), flush=True)

    def progress(i: int, n: int, r: answer_eval.QuestionResult) -> None:
        if not args.quiet:
            verdict = "ok" if r.correct else ("refused:" + (r.refusal_stage or "?") if r.refused else "answered")
            print(f"[{i}/{n}] {r.id} {'A' if r.answerable else 'U'} {verdict} {r.total_ms / 1000:.1f}s "
                  f"{' '.join(r.answer.split())[:100]}", flush=True)

    rep = evaluate_answers(settings, aset, items, k=args.k, max_tokens=args.max_tokens, rebuild=args.rebuild,
                           progress=progress, started=started)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rep, ensure_ascii=False, indent=1), encoding="utf-8")
    print(answer_eval.table(rep["summary"]))
    return 0
