"""Several writers and readers on one index: partitioned ingestion workers plus UI queries.

What is covered, honestly:
* With a Qdrant *server* the workers are separate processes. No server binary can be installed
  on these machines (docs/engine-facts.md), so the "same time" part runs as threads of one process sharing
  one store, on both embedded engines: edge, and qdrant-client's local mode, which goes through
  the very ``QdrantClientStore`` code that talks to a server (minus the process boundary).
* Where the embedded engine does not allow it — a second *process* on the same index — the real
  CLI must exit 3 with a clear "index busy" message naming the holder; that runs as processes.
* The per-partition run locks and the re-index gate are tested as the real flock-based locks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.parse import parse_file
from ingest.partition import Partition, PartitionError, path_bucket
from ingest.run_locks import GateBusyError, ingest_locks, reindex_lock, run_lock
from retrieval.models import Principal
from retrieval.search import Searcher
from retrieval.store.lock import LockBusyError
from retrieval.workspace import Workspace

from .conftest import REPO, make_settings
from .ops_corpus import TOPICS, write_docx

ALICE = Principal(user="alice", groups=["staff"])
HALVES = (Partition(0, 2), Partition(1, 2))


def split_share(folder: Path, per_partition: int = 2) -> dict[Partition, list[Path]]:
    """Documents until each half of a 2-way split has ``per_partition`` (paths hash randomly,
    since tmp folders differ per run)."""
    owned: dict[Partition, list[Path]] = {p: [] for p in HALVES}
    names = list(TOPICS)
    i = 0
    while min(len(v) for v in owned.values()) < per_partition:
        name = names[i % len(names)]
        path = write_docx(folder / f"{name}-{i}.docx", *TOPICS[name]).resolve()
        owned[HALVES[path_bucket(path, 2)]].append(path)
        i += 1
        assert i < 40, "hashing never filled both partitions"
    return owned


def docent(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCENT_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ui.cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_partition_spec_and_stable_split(tmp_path):
    assert Partition.parse("1/4") == Partition(1, 4) and str(Partition(1, 4)) == "1/4"
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(PartitionError):
            Partition.parse(bad)
    paths = [f"/srv/share/doc-{i}.pdf" for i in range(200)]
    for n in (1, 3, 4):
        owners = [[Partition(k, n).owns(p) for k in range(n)] for p in paths]
        assert all(sum(o) == 1 for o in owners)  # every file belongs to exactly one worker
    # Stable across processes (not Python's salted hash()).
    out = subprocess.run([sys.executable, "-c", "from ingest.partition import path_bucket; "
                          "print([path_bucket(f'/srv/share/doc-{i}.pdf', 4) for i in range(20)])"],
                         cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == str([path_bucket(f"/srv/share/doc-{i}.pdf", 4) for i in range(20)])


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_two_partition_workers_and_queries_at_once_on_one_store(tmp_path, embedder, engine):
    share = tmp_path / "share"
    owned = split_share(share)
    settings = make_settings(tmp_path / "docent", qdrant_embedded_engine=engine)
    with Workspace(settings, embedder=embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        searcher = Searcher.from_workspace(ws)
        reports: dict[Partition, object] = {}
        errors: list[BaseException] = []
        answered: list[int] = []
        done = threading.Event()

        def work(part: Partition) -> None:
            try:
                indexer = DocumentIndexer(settings, ws.index, embedder)
                reports[part] = BatchIngest(ws.index, indexer, lambda p: parse_file(p, max_file_mb=10)).run(
                    rec, [share], partition=part)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        def ask() -> None:
            questions = ["paid annual leave", "hotel costs", "lost laptop", "canteen lunch"]
            i = 0
            while not done.is_set() or i < 3:
                try:
                    answered.append(len(searcher.search(questions[i % 4], ALICE, ["Handbook"], k=3).passages))
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return
                i += 1

        workers = [threading.Thread(target=work, args=(p,)) for p in HALVES]
        reader = threading.Thread(target=ask)
        reader.start()
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=600)
        done.set()
        reader.join(timeout=120)

        assert not errors, errors[:3]
        assert len(answered) >= 3 and answered[-1] > 0
        for part, report in reports.items():
            indexed = {Path(f.path) for f in report.files if f.status == "indexed"}
            assert indexed == set(owned[part]), part  # its own share, all of it, nothing else
            assert report.totals["failed"] == 0 and report.totals["skipped"] == 0
        listed = {Path(d.path) for d in ws.index.list_documents(rec)}
        assert listed == set(owned[HALVES[0]]) | set(owned[HALVES[1]])

        # --prune removes only the worker's own vanished files.
        gone0, gone1 = owned[HALVES[0]][0], owned[HALVES[1]][0]
        gone0.unlink()
        gone1.unlink()
        indexer = DocumentIndexer(settings, ws.index, embedder)
        job = BatchIngest(ws.index, indexer, lambda p: parse_file(p, max_file_mb=10))
        pruned = job.run(rec, [share], prune=True, partition=HALVES[0])
        assert [Path(f.path) for f in pruned.files if f.status == "removed"] == [gone0]
        listed = {Path(d.path) for d in ws.index.list_documents(rec)}
        assert gone1 in listed and gone0 not in listed
        job.run(rec, [share], prune=True, partition=HALVES[1])
        assert gone1 not in {Path(d.path) for d in ws.index.list_documents(rec)}


def test_second_process_on_the_embedded_index_gets_index_busy(tmp_path, embedder):
    share = tmp_path / "share"
    split_share(share, per_partition=1)
    data = tmp_path / "docent"
    settings = make_settings(data)
    with Workspace(settings, embedder=embedder):  # "the UI" holds the embedded index
        with run_lock(settings, "Handbook", HALVES[0]):  # worker 0 is running
            same = docent(data, "ingest", str(share), "--collection", "Handbook", "--partition", "0/2")
            other = docent(data, "ingest", str(share), "--collection", "Handbook", "--partition", "1/2")
    # The same partition again: its own run lock, naming the holder.
    assert same.returncode == 3, same.stderr
    assert "partition 0/2" in same.stderr and f"pid {os.getpid()}" in same.stderr
    # Another partition passes its run lock, then meets the embedded engine's one-process rule.
    assert other.returncode == 3, other.stderr
    assert "index busy" in other.stderr and f"pid {os.getpid()}" in other.stderr
    assert "Traceback" not in same.stderr + other.stderr


def test_reindex_and_ingestion_exclude_each_other(tmp_path):
    settings = make_settings(tmp_path / "docent")
    with ingest_locks(settings, "Handbook", HALVES[1]):
        # Another partition may start beside it…
        with ingest_locks(settings, "Handbook", HALVES[0]):
            pass
        # …but not a re-index, which names who is ingesting.
        with pytest.raises(GateBusyError) as busy:
            with reindex_lock(settings, "Handbook"):
                pass
        assert "being ingested" in str(busy.value) and "partition 1/2" in str(busy.value)
        assert f"pid {os.getpid()}" in str(busy.value)
    with reindex_lock(settings, "Handbook"):
        with pytest.raises(LockBusyError, match="being re-indexed by pid"):
            with ingest_locks(settings, "Handbook", HALVES[0]):
                pass
        out = docent(tmp_path / "docent", "ingest", str(tmp_path), "--collection", "Handbook")
        assert out.returncode == 3 and "re-indexed" in out.stderr, out.stderr
        with pytest.raises(LockBusyError):  # one re-index at a time
            with reindex_lock(settings, "Handbook"):
                pass
    with ingest_locks(settings, "Handbook"):  # all free again
        pass


def test_partitioned_cli_run_indexes_and_reports_only_its_share(tmp_path):
    share = tmp_path / "share"
    owned = split_share(share, per_partition=1)
    data = tmp_path / "docent"
    out = docent(data, "ingest", str(share), "--collection", "Handbook", "--partition", "1/2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {Path(f["path"]) for f in report["files"]} == set(owned[HALVES[1]])
    assert all(f["status"] == "indexed" for f in report["files"])
    assert list((data / "reports").glob("ingest-*-Handbook-part-1-of-2.json"))
    bad = docent(data, "ingest", str(share), "--collection", "Handbook", "--partition", "2/2")
    assert bad.returncode == 2 and "K must be between 0 and 1" in bad.stderr
