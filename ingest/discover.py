"""Find the files a batch run should look at."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_SUFFIXES = frozenset({".pdf", ".docx"})


@dataclass
class Discovery:
    supported: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def _ignored(name: str) -> bool:
    # Office lock files (~$Report.docx) and hidden files are never documents.
    return name.startswith(("~$", "."))


def discover(paths: list[Path]) -> Discovery:
    """Walk files and folders (sorted, so runs are deterministic); symlinked folders are not
    followed, so a link loop cannot make a cron run endless."""
    found = Discovery()
    seen: set[Path] = set()

    def add(p: Path) -> None:
        p = p.resolve()
        if p in seen or _ignored(p.name):
            return
        seen.add(p)
        (found.supported if p.suffix.lower() in SUPPORTED_SUFFIXES else found.skipped).append(p)

    for root in paths:
        if root.is_file():
            add(root)
        elif root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
                for name in sorted(filenames):
                    add(Path(dirpath) / name)
        else:
            found.missing.append(root)
    return found


def under_roots(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in (r.resolve() for r in roots))
