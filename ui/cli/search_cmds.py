"""``docent search "question" --collection NAME``: ranked passages with their provenance."""

from __future__ import annotations

import argparse
import sys
import textwrap

from retrieval.models import Passage, Principal
from retrieval.settings import Settings
from ui.usecases import LOCAL_ADMIN, SEARCH_MODES, Docent
from ui.usecases.errors import RerankerUnavailableError, SearchError, UnknownUserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search collections and print ranked passages with document, page/section and offsets",
        description="Search as a user: with --as-user U only passages that user may read are returned (a "
        "built-in user gets their stored groups; an OIDC/proxy user is given with --groups g1,g2). Without "
        "--as-user the search runs as a local administrator (every document that is not disabled), since "
        "whoever can run this command can read the index files anyway.",
    )
    p.add_argument("question")
    p.add_argument("--collection", "-c", action="append", required=True,
                   help="collection to search (repeat for several)")
    p.add_argument("--as-user", metavar="U", help="search as this user (default: local admin)")
    p.add_argument("--groups", metavar="G1,G2",
                   help="groups of an --as-user not in the built-in user store, comma-separated")
    p.add_argument("--mode", choices=SEARCH_MODES, help="default: hybrid+rerank when a reranker is "
                   "configured, else hybrid")
    p.add_argument("-k", type=int, default=8, help="passages to return (default 8)")
    p.add_argument("--window", type=int, default=0, help="neighbouring chunks of context on each side")
    p.add_argument("--document", action="append", metavar="ID", help="only this document id (repeatable)")
    p.add_argument("--json", action="store_true", help="print the search report as JSON")
    p.set_defaults(func=run)


def principal_from_args(app: Docent, args: argparse.Namespace) -> Principal:
    if args.as_user is None:
        if args.groups is not None:
            raise SearchError("--groups needs --as-user")
        return LOCAL_ADMIN
    groups = None if args.groups is None else [g.strip() for g in args.groups.split(",") if g.strip()]
    return app.principal(args.as_user, groups)


def _where(p: Passage) -> str:
    parts = [p.title or p.path]
    if p.page is not None:
        parts.append(f"p. {p.page}" if p.page_end in (None, p.page) else f"pp. {p.page}-{p.page_end}")
    if p.heading_path:
        parts.append(" > ".join(p.heading_path))
    parts.append(f"chars {p.start}-{p.end}")
    return " | ".join(parts)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with Docent.from_settings(settings) as app:
            principal = principal_from_args(app, args)
            report = app.search(principal, args.question, args.collection, mode=args.mode, k=args.k,
                                document_ids=args.document, window=args.window)
    except (SearchError, RerankerUnavailableError, UnknownUserError) as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.model_dump_json())
        return 0
    who = "local admin" if principal.is_admin else f"{principal.user} ({', '.join(principal.groups) or 'no groups'})"
    print(f"{len(report.passages)} passage(s) from {', '.join(report.collections) or 'no indexed collection'} "
          f"as {who}, {report.retrieval_ms:.0f} ms")
    print("stages: " + "; ".join(report.stages))
    for i, p in enumerate(report.passages, 1):
        print(f"\n[{i}] {p.score:.4f}  {_where(p)}\n    {p.path}")
        body = (f"… {p.context_before[-200:]} ⟨" if p.context_before else "") + p.text + (
            f"⟩ {p.context_after[:200]} …" if p.context_after else "")
        print(textwrap.indent(textwrap.fill(body, width=100, replace_whitespace=False), "    "))
    return 0
