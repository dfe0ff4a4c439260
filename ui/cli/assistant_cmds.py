"""``docent ask`` and ``docent summarize``: grounded answers and summaries from the shell."""

from __future__ import annotations

import argparse
import json
import sys

from assistant.answer_models import Answer
from retrieval.models import Principal
from retrieval.settings import Settings
from ui.usecases import LOCAL_ADMIN, Docent
from ui.usecases.errors import (
    CatalogError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
    NoLanguageModelError,
    SummaryRefusedError,
    UnknownUserError,
)

LLM_ERRORS = (LLMUnavailableError, LLMTimeoutError, LLMServerError)


def _identity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-user", metavar="U", help="act as this user (built-in user, or with --groups as stated); "
                   "default: local administrator")
    p.add_argument("--groups", metavar="G1,G2", help="the user's groups, for users not in the built-in store")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question from the documents, with cited sources")
    p.add_argument("question")
    p.add_argument("--collection", "-c", action="append", required=True, help="collection (repeat for several)")
    p.add_argument("-k", type=int, default=6, help="passages given to the model (default 6)")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    _identity_args(p)
    p.set_defaults(func=ask)

    p = sub.add_parser("summarize", help="summarize one document, citing its pages or sections")
    p.add_argument("document", help="document id, file path or file name")
    p.add_argument("--collection", "-c", required=True)
    p.add_argument("--json", action="store_true")
    _identity_args(p)
    p.set_defaults(func=summarize)


def principal_from(app: Docent, args: argparse.Namespace) -> Principal:
    if args.as_user is None:
        if args.groups:
            raise CatalogError("--groups needs --as-user")
        return LOCAL_ADMIN
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    try:
        return app.principal(args.as_user, groups)
    except UnknownUserError as exc:
        raise CatalogError(str(exc)) from None


def _where(c) -> str:
    if c.page is not None:
        return f"p. {c.page}"
    return " > ".join(c.heading_path) or "start"


def print_answer(answer: Answer, streamed: bool) -> None:
    if not streamed:
        print(answer.answer)
    if answer.citations:
        print("\nSources:")
    for c in answer.citations:
        mark = "" if c.supported else "  [not supported by the passage]"
        print(f"[{c.n}] {c.title} — {_where(c)} ({c.path}){mark}")
        print(f"    “{c.quote.strip()[:300]}”")
    if answer.removed_citations:
        print(f"\n(removed citations to passages that were not given: {answer.removed_citations})")


def ask(settings: Settings, args: argparse.Namespace) -> int:
    with Docent.from_settings(settings) as app:
        principal = principal_from(app, args)
        notice = app.llm.notice
        if notice and not args.json:
            print(notice, file=sys.stderr)
        final = None
        streamed = False
        # The same safety policy, rate limit and audit line as questions asked in the app.
        for event in app.ask(principal, args.collection, args.question, k=args.k):
            if event.type == "delta" and not args.json:
                print(event.text, end="", flush=True)
                streamed = True
            elif event.type == "final":
                final = event.answer
    if args.json:
        print(json.dumps(final.to_json_dict(), ensure_ascii=False))
        return 0
    if streamed:
        print()
    # A refusal after streaming began (the output policy stopped the answer) replaces what was
    # shown: say so, or the reader is left with a cut-off sentence.
    print_answer(final, streamed and final.mode != "refused")
    return 0


def summarize(settings: Settings, args: argparse.Namespace) -> int:
    with Docent.from_settings(settings) as app:
        principal = principal_from(app, args)
        # The same words whether the document is missing or forbidden: no existence leak.
        doc = app.find_document(principal, args.collection, args.document)
        final = None
        try:
            for event in app.summarize(principal, args.collection, doc.document_id):
                if event.type == "stage" and not args.json:
                    print(event.text, file=sys.stderr)
                elif event.type == "delta" and not args.json:
                    print(event.text, end="", flush=True)
                elif event.type == "final":
                    final = event.summary
        except NoLanguageModelError:
            print(f"docent: summaries need a language model. {app.llm.notice}", file=sys.stderr)
            return 2
        except SummaryRefusedError as exc:
            return _refused(doc, str(exc), args.json)
    if args.json:
        print(json.dumps({"document": doc.path, "title": doc.title, **final.to_json_dict()}, ensure_ascii=False))
        return 0
    print(f"\n\n({final.path}, {final.prompt_tokens} prompt tokens of a {final.budget_tokens}-token budget)")
    for c in final.citations:
        print(f"[{c.n}] {c.label}: “{c.quote.strip()[:200]}”" + ("" if c.supported else "  [not supported]"))
    return 0


def _refused(chunk, message: str, as_json: bool) -> int:
    """A withheld summary is an answer, as a refused question is for ``docent ask``: exit 0."""
    if as_json:
        print(json.dumps({"document": chunk.path, "title": chunk.title, "refused": True, "text": message},
                         ensure_ascii=False))
    else:
        print("\n\n" + message)
    return 0
