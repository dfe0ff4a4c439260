"""``docent ingest``: the batch job cron runs."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from ingest.partition import Partition, PartitionError
from ingest.report import EXIT_USAGE
from retrieval.settings import Settings
from ui.usecases import LOCAL_ADMIN, Docent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="index PDF/DOCX files and folders into a collection (cron-safe)")
    p.add_argument("paths", nargs="+", type=Path, help="files or folders")
    p.add_argument("--collection", "-c", required=True, help="collection name (created if missing)")
    p.add_argument("--prune", action="store_true", help="remove documents whose files under PATHS disappeared")
    p.add_argument("--report", type=Path, help="write the run report as JSON to this file")
    p.add_argument("--json", action="store_true", help="print the run report as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--partition", metavar="K/N", type=_partition,
                   help="index only this worker's share of the files (0 <= K < N); workers on disjoint "
                   "partitions of one collection may run at once against a Qdrant server")
    p.set_defaults(func=run)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def _partition(spec: str) -> Partition:
    try:
        return Partition.parse(spec)
    except PartitionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress_bar(enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="file", file=sys.stderr, dynamic_ncols=True)

    def update(path: str, done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(Path(path).name[-40:], refresh=False)
        bar.refresh()

    return update, bar.close


def run(settings: Settings, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing and len(missing) == len(args.paths):
        print(f"docent: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    roots = [p.resolve() for p in args.paths]
    # The run lock is taken before the index is opened, so an overlapping cron run exits at
    # once naming the holder (Docent.ingest_folder).
    progress, close_bar = _progress_bar(sys.stderr.isatty() and not args.no_progress and not args.json)
    try:
        with Docent.from_settings(settings) as app:
            report = app.ingest_folder(LOCAL_ADMIN, args.collection, roots, prune=args.prune, progress=progress,
                                       partition=args.partition)
    finally:
        close_bar()
    data = report.to_json_dict()
    _write_report(settings, args, data)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for f in report.files:
            if f.status == "failed":
                print(f"FAILED  {f.path}: {f.reason}", file=sys.stderr)
            for w in f.warnings:
                print(f"WARNING {f.path}: {w}", file=sys.stderr)
        print(report.summary_line())
    return report.exit_code


def _write_report(settings: Settings, args: argparse.Namespace, data: dict) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(data["started_at"]))
    part = f"-{args.partition.label}" if args.partition is not None else ""
    (settings.reports_dir / f"ingest-{stamp}-{_safe(args.collection)}{part}.json").write_text(text, encoding="utf-8")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
