"""The shared stemmer must be usable from many threads at once (answers run in worker threads)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from retrieval import text_units
from retrieval.sparse import tokenize

WORDS = ["warranties", "running", "capitalization", "expenditures", "generously", "agreements"] * 200


def test_each_thread_stems_with_its_own_stemmer_and_gets_serial_results():
    expected = [text_units.stem(w) for w in WORDS]
    seen: dict[int, int] = {}
    barrier = threading.Barrier(8)

    def work(_):
        barrier.wait()  # all eight threads stem at the same moment
        out = [text_units.stem(w) for w in WORDS]
        seen[threading.get_ident()] = id(text_units._local.stemmer)
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    assert all(r == expected for r in results)
    # No stemmer object is shared between threads: its scratch state is per call.
    assert len(set(seen.values())) == len(seen) == 8


def test_tokenize_uses_the_shared_stemmer():
    assert tokenize("Warranties and agreements") == [text_units.stem("warranties"), text_units.stem("agreements")]
