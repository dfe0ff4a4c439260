"""Embedded-index specifics beyond the shared contract: the file lock itself, a second opener in
the same process or without Docent's lock, crash safety of edge, and edge's input limits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from qdrant_client import QdrantClient

from retrieval.store.base import Filter, IndexBusyError, Match
from retrieval.store.edge import EdgeStore
from retrieval.store.factory import open_store
from retrieval.store.lock import FileLock, LockBusyError, read_holder
from tests.store_corpus import CHUNKS, COLL, DIM, IDS, REPO, embedded_settings


def test_same_process_second_open_is_refused_too(tmp_path):
    store = open_store(embedded_settings(tmp_path, "edge"))
    try:
        with pytest.raises(IndexBusyError, match=f"pid {os.getpid()}"):
            open_store(embedded_settings(tmp_path, "edge"))
    finally:
        store.close()
    open_store(embedded_settings(tmp_path, "edge")).close()


def test_local_mode_opened_without_our_lock_is_reported_busy(tmp_path):
    settings = embedded_settings(tmp_path, "local")
    outsider = QdrantClient(path=str(settings.index_dir / "local"))
    try:
        with pytest.raises(IndexBusyError, match="another process"):
            open_store(settings)
    finally:
        outsider.close()
    open_store(settings).close()  # our lock was released after the failure


def test_file_lock_records_and_clears_holder(tmp_path):
    path = tmp_path / "locks" / "batch.lock"
    path.parent.mkdir()
    path.write_text("garbage left by a crashed holder")  # a stale file never blocks
    with FileLock(path, "batch run") as lock:
        holder = read_holder(path)
        assert holder is not None and holder.pid == os.getpid() and holder.purpose == "batch run"
        with pytest.raises(LockBusyError) as err:
            FileLock(path, "batch run").acquire()
        assert err.value.holder == holder
        assert str(err.value).startswith(f"batch run busy: {path} is held by pid {os.getpid()}")
        assert lock.held
    assert read_holder(path) is None
    FileLock(path, "batch run").acquire().release()


# --- edge specifics -----------------------------------------------------------------------
_KILL_AFTER_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from tests.store_corpus import CHUNKS, COLL, DENSE, DIM, SPARSE, by_doc
    from retrieval.store.base import Filter
    from retrieval.store.edge import EdgeStore
    s = EdgeStore(sys.argv[1])
    s.ensure_collection(COLL, DIM)
    s.upsert(COLL, CHUNKS, DENSE, SPARSE)
    s.set_payload(COLL, Filter(must=(by_doc("alpha"),)), {"disabled": True})
    s.delete(COLL, Filter(must=(by_doc("beta"),)))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_edge_loses_nothing_on_kill_9(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_WRITE, str(tmp_path / "edge"), str(REPO)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    s = EdgeStore(tmp_path / "edge")
    try:
        assert s.count(COLL) == 8
        assert s.count(COLL, Filter(must=(Match("disabled", (True,)),))) == 5
        assert s.retrieve(COLL, [IDS[11]]) == [CHUNKS[11]]
    finally:
        s.close()


def test_edge_rejects_unsafe_names_and_unmatchable_bools(tmp_path):
    s = EdgeStore(tmp_path)
    try:
        for bad in ("../escape", ".hidden", "a/b", ""):
            with pytest.raises(ValueError, match="name"):
                s.ensure_collection(bad, DIM)
        s.ensure_collection(COLL, DIM)
        # qdrant-edge-py 0.9.0 sends MatchValue(True) as 1: refuse rather than silently match nothing
        with pytest.raises(ValueError, match="cannot match booleans"):
            s.count(COLL, Filter(must=(Match("reviewed", (True,)),)))
    finally:
        s.close()
