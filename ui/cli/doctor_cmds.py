"""``docent doctor``: check the installation, one line per check, exit 1 if any fails.

Used by people (README: "run docent doctor first") and by container health checks, which pick
the cheap checks with ``--check`` (loading the embedding model takes seconds and memory).
"""

from __future__ import annotations

import argparse
import json
import sys

from retrieval.health import Check, check_data_dir, check_disk, check_embedding, check_qdrant, check_settings
from retrieval.settings import Settings

CHECKS = ("settings", "data", "disk", "embedding", "qdrant", "llm", "safety")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check settings, index, LLM server, embedding model, disk; exit 1 on any failure")
    p.add_argument("--check", action="append", choices=CHECKS, metavar="NAME",
                   help=f"run only these checks (repeatable): {', '.join(CHECKS)}; default all")
    p.add_argument("--min-free-gb", type=float, default=1.0, help="fail below this much free disk (default 1)")
    p.add_argument("--json", action="store_true", help="print the results as a JSON list")
    p.set_defaults(func=run)


def run_checks(settings: Settings, only: list[str] | None = None, min_free_gb: float = 1.0) -> list[Check]:
    wanted = set(only or CHECKS)
    results: list[Check] = []
    if "settings" in wanted:
        results.append(check_settings(settings))
    if "data" in wanted:
        results.append(check_data_dir(settings))
    if "disk" in wanted:
        results.append(check_disk(settings, min_free_gb=min_free_gb, warn_free_gb=max(5.0, min_free_gb)))
    embedding = None
    if "embedding" in wanted:
        check, embedding = check_embedding(settings)
        results.append(check)
    if "qdrant" in wanted:
        results.extend(check_qdrant(settings, embedding))
    if "llm" in wanted:
        from assistant.health import check_llm

        results.append(check_llm(settings))
    if "safety" in wanted:
        from assistant.health import check_safety

        results.append(check_safety(settings))
    return results


def run(settings: Settings, args: argparse.Namespace) -> int:
    results = run_checks(settings, args.check, args.min_free_gb)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    else:
        for r in results:
            print(r.line())
        failed = [r.name for r in results if r.status == "fail"]
        print(f"{len(results) - len(failed)} of {len(results)} checks passed"
              + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if any(r.status == "fail" for r in results) else 0
