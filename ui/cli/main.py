"""``docent`` — entry point: parse arguments, run one subcommand, map failures to exit codes.

Exit codes are a contract with cron: 0 ok, 1 some files failed, 2 usage/config error,
3 lock held / index busy. Errors are printed as one plain sentence, never a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pydantic import ValidationError

from ingest.report import EXIT_BUSY, EXIT_USAGE
from retrieval.settings import Settings
from ui.cli import (
    admin_cmds,
    api_cmds,
    assistant_cmds,
    doctor_cmds,
    eval_answers_cmds,
    eval_cmds,
    eval_pages_cmds,
    ingest_cmds,
    reindex_cmds,
    search_cmds,
    ui_cmds,
    user_cmds,
)
from ui.usecases.errors import (
    CatalogError,
    IndexBusyError,
    IndexModelMismatchError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
    LockBusyError,
)


class UsageError(Exception):
    """A problem with the command line itself."""


COMMAND_MODULES = [ingest_cmds, admin_cmds, search_cmds, assistant_cmds, eval_cmds, ui_cmds, user_cmds]
COMMAND_MODULES += [doctor_cmds, reindex_cmds, eval_answers_cmds, eval_pages_cmds, api_cmds]

# The language model server is down, too slow or refused the request.
EXIT_LLM = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docent", description="Docent: answers with page-exact citations from your documents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Model-loading progress bars would land in every cron mail.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # one line per bad variable, not a traceback (doctor relies on it)
        for err in exc.errors():
            where = "DOCENT_" + "_".join(str(p) for p in err["loc"]).upper()
            print(f"docent: invalid setting {where}: {err['msg']}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(settings, args) or 0)
    except (LockBusyError, IndexBusyError) as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except (CatalogError, IndexModelMismatchError, UsageError, FileNotFoundError) as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LLMUnavailableError, LLMTimeoutError, LLMServerError) as exc:
        print(f"docent: {exc.user_message}", file=sys.stderr)
        return EXIT_LLM
    except KeyboardInterrupt:
        print("docent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
