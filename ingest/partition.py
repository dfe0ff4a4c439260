"""Split one collection's files over several ingestion workers: ``--partition K/N``.

A file belongs to partition ``sha256(absolute path) mod N``. The hash is of the path, not the
content, so a file stays with its worker when it changes, and every worker decides alone,
without talking to the others. All workers must see the files under the same absolute paths
(the same mount point), since a path is also the document's identity in the index.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.discover import Discovery

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_PARTITIONS = 1024


class PartitionError(ValueError):
    """A partition spec that is not ``K/N`` with ``0 <= K < N``."""


def path_bucket(path: str | Path, n: int) -> int:
    """The partition of ``path`` among ``n`` (stable across processes, machines and Python runs,
    unlike ``hash()``, which is salted per process)."""
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n


@dataclass(frozen=True)
class Partition:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS:
            raise PartitionError(f"partition count must be between 1 and {MAX_PARTITIONS}, got {self.count}")
        if not 0 <= self.index < self.count:
            raise PartitionError(
                f"partition {self.index}/{self.count}: K must be between 0 and {self.count - 1} (K/N counts from 0)"
            )

    @classmethod
    def parse(cls, spec: str) -> "Partition":
        m = _SPEC.match(spec or "")
        if not m:
            raise PartitionError(f"bad partition {spec!r}: write K/N, e.g. 0/4 for the first of four workers")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """For file names (locks, reports): ``part-0-of-4``."""
        return f"part-{self.index}-of-{self.count}"

    def owns(self, path: str | Path) -> bool:
        return path_bucket(path, self.count) == self.index

    def select(self, found: Discovery) -> Discovery:
        """This worker's share of a discovery. Unsupported files are split too, so each is
        reported by exactly one worker; missing roots are reported by every worker, since
        every worker was asked for them."""
        return Discovery(
            supported=[p for p in found.supported if self.owns(p)],
            skipped=[p for p in found.skipped if self.owns(p)],
            missing=list(found.missing),
        )
