"""One decorator for subcommands whose refusals are the user's input: print the reason as one
line and exit with the usage code, instead of a traceback."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

from ingest.report import EXIT_USAGE
from retrieval.settings import Settings

Command = Callable[[Settings, argparse.Namespace], int]


def usage_errors(*kinds: type[BaseException]) -> Callable[[Command], Command]:
    def wrap(fn: Command) -> Command:
        @functools.wraps(fn)
        def run(settings: Settings, args: argparse.Namespace) -> int:
            try:
                return fn(settings, args)
            except kinds as exc:
                print(f"docent: {exc}", file=sys.stderr)
                return EXIT_USAGE
        return run
    return wrap
