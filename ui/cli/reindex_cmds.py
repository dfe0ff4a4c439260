"""``docent reindex --collection NAME``: rebuild a collection's index and switch to it atomically."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ingest.report import EXIT_USAGE
from ingest.run_locks import safe_name
from retrieval.settings import Settings
from ui.usecases import LOCAL_ADMIN, Docent
from ui.usecases.errors import ReindexError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reindex",
        help="rebuild a collection's index (after changing the embedding model, chunking or shards) "
        "and switch to it atomically; queries keep using the old index until then",
        description="Builds a new physical index from the documents' original files with the current "
        "settings, then switches the collection's alias in one step. With the embedded engine the index "
        "is held by one process: stop the UI first, or run this while nothing else holds the index. "
        "Ingestion of the collection waits (exit 3) until the re-index is done.",
    )
    p.add_argument("--collection", "-c", required=True, help="collection name")
    p.add_argument("--keep-missing", action="store_true",
                   help="documents whose files vanished or no longer parse keep their stored passages, "
                   "re-embedded with the current model (default: they are dropped and reported)")
    p.add_argument("--allow-empty", action="store_true",
                   help="switch even if not one document could be rebuilt (default: refuse, old index stays)")
    p.add_argument("--grace", type=float, default=5.0, metavar="SECONDS",
                   help="wait this long after the switch before dropping the old index (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.grace < 0:
        print("docent: --grace must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    progress = None
    if sys.stderr.isatty() and not args.json:
        def progress(path: str, done: int, total: int) -> None:
            print(f"\r{done}/{total} {path[-60:]:<60}", end="", file=sys.stderr, flush=True)
    try:
        with Docent.from_settings(settings) as app:
            report = app.reindex(LOCAL_ADMIN, args.collection, keep_missing=args.keep_missing,
                                 allow_empty=args.allow_empty, grace_s=args.grace, progress=progress)
    except ReindexError as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if progress:
            print(file=sys.stderr)
    data = report.to_json_dict()
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(report.started_at))
    (settings.reports_dir / f"reindex-{stamp}-{safe_name(args.collection)}.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for f in report.files:
            if f.status in ("missing", "failed"):
                print(f"{f.status.upper():<8}{f.path}: {f.reason}", file=sys.stderr)
        for note in report.notes:
            print(f"WARNING {note}", file=sys.stderr)
        print(report.summary_line())
    return report.exit_code
