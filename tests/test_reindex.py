"""Re-index without downtime, on real DOCX files, the real embedding model and the real embedded
engines: a new physical index is built from the files, flags are carried over, the alias
switches atomically, and queries running meanwhile never fail nor mix the two versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.parse import parse_file
from ingest.reindex import Reindexer, ReindexError
from retrieval.index import Index
from retrieval.models import Principal
from retrieval.search import Searcher
from retrieval.workspace import Workspace

from .conftest import REPO, make_settings
from .ops_corpus import write_share

ALICE = Principal(user="alice", groups=["staff"])
ADMIN = Principal(user="root", is_admin=True)


def parse(path):
    return parse_file(path, max_file_mb=10)


def ingest(ws, rec, share):
    indexer = DocumentIndexer(ws.settings, ws.index, ws.embedder)
    return BatchIngest(ws.index, indexer, parse).run(rec, [share])


@pytest.fixture
def corpus(tmp_path, embedder, request):
    """(workspace, collection, share folder) with three documents ingested; engine per param."""
    engine = getattr(request, "param", "edge")
    share = tmp_path / "share"
    write_share(share, ["leave-policy", "travel-expenses", "it-security"])
    with Workspace(make_settings(tmp_path / "docent", qdrant_embedded_engine=engine), embedder=embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        assert ingest(ws, rec, share).totals["indexed"] == 3
        yield ws, ws.catalog.get(rec.id), share


def reindexer(ws, **kw) -> Reindexer:
    settings = kw.pop("settings", ws.settings)
    return Reindexer(Index(settings, ws.store, ws.catalog), ws.embedder, kw.pop("parse", parse),
                     grace_s=kw.pop("grace_s", 0), **kw)


def docs_by_name(ws, rec) -> dict:
    return {d.path.rsplit("/", 1)[-1]: d for d in ws.index.list_documents(rec)}


def test_reindex_builds_a_new_version_switches_and_carries_flags(corpus):
    ws, rec, share = corpus
    alias = ws.index.alias(rec)
    before = docs_by_name(ws, rec)
    ws.index.set_disabled(rec, before["travel-expenses.docx"].document_id, True)
    ws.index.set_access(rec, before["it-security.docx"].document_id, ["security-team"])
    chunks_before = ws.index.count(rec)
    assert ws.store.resolve_alias(alias) == f"{alias}_v1"

    # New chunking: every document must be parsed and chunked again.
    finer = ws.settings.model_copy(update={"chunk_tokens": 24, "chunk_overlap_tokens": 4})
    switched = []
    report = reindexer(ws, settings=finer, on_switch=lambda old, new: switched.append((old, new))).run(rec)

    assert report.switched and report.exit_code == 0 and report.counts["rebuilt"] == 3
    assert switched == [(f"{alias}_v1", f"{alias}_v2")]
    assert ws.store.resolve_alias(alias) == f"{alias}_v2"
    assert f"{alias}_v1" not in ws.store.list_collections()  # the old index is gone
    rec = ws.catalog.get(rec.id)
    assert rec.version == 2 and rec.model_id == ws.embedder.model_id and rec.dim == ws.embedder.dim
    after = docs_by_name(ws, rec)
    assert {n: d.document_id for n, d in after.items()} == {n: d.document_id for n, d in before.items()}
    assert ws.index.count(rec) > chunks_before  # smaller chunks, more of them
    assert after["travel-expenses.docx"].disabled and not after["leave-policy.docx"].disabled
    assert after["it-security.docx"].access_groups == ["security-team"]

    # Search sees the new index with the same access rules.
    searcher = Searcher.from_workspace(ws)
    seen = lambda who, q: {p.path.rsplit("/", 1)[-1] for p in searcher.search(q, who, ["Handbook"], k=5).passages}  # noqa: E731
    assert "it-security.docx" not in seen(ALICE, "password length and multi-factor authentication")
    assert "it-security.docx" in seen(Principal(user="sec", groups=["security-team"]), "password length")
    assert "travel-expenses.docx" not in seen(ADMIN, "hotel costs per night reimbursed")

    # Ingestion carries on against the new version: nothing changed on disk, nothing re-indexed.
    again = ingest(ws, rec, share)
    assert again.totals["unchanged"] == 3 and again.totals["indexed"] == 0


@pytest.mark.parametrize("keep_missing", [False, True])
def test_vanished_files_are_reported_and_dropped_or_kept(corpus, keep_missing):
    ws, rec, share = corpus
    (share / "leave-policy.docx").unlink()
    report = reindexer(ws, keep_missing=keep_missing).run(rec)
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in report.files}
    names = set(docs_by_name(ws, ws.catalog.get(rec.id)))
    if keep_missing:
        assert by_name["leave-policy.docx"].status == "carried_over"
        assert report.exit_code == 0 and "leave-policy.docx" in names
        hits = Searcher.from_workspace(ws).search("paid annual leave days", ALICE, ["Handbook"], k=3).passages
        assert hits and hits[0].path.endswith("leave-policy.docx")
    else:
        assert by_name["leave-policy.docx"].status == "missing"
        assert by_name["leave-policy.docx"].reason == "file no longer exists"
        assert report.exit_code == 1 and names == {"travel-expenses.docx", "it-security.docx"}
    assert report.counts["rebuilt"] == 2


def test_nothing_rebuildable_leaves_the_live_index_alone(corpus):
    ws, rec, share = corpus
    alias = ws.index.alias(rec)
    for f in share.iterdir():
        f.unlink()  # the share is not mounted
    with pytest.raises(ReindexError, match="could be rebuilt"):
        reindexer(ws).run(rec)
    assert ws.store.resolve_alias(alias) == f"{alias}_v1"
    assert f"{alias}_v2" not in ws.store.list_collections()
    assert ws.catalog.get(rec.id).version == 1 and len(ws.index.list_documents(rec)) == 3


def test_a_failed_build_is_dropped_and_a_rerun_succeeds(corpus):
    ws, rec, share = corpus
    alias = ws.index.alias(rec)
    calls = []

    def flaky_parse(path):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("parser worker died")
        return parse(path)

    with pytest.raises(RuntimeError, match="parser worker died"):
        reindexer(ws, parse=flaky_parse).run(rec)
    assert ws.store.resolve_alias(alias) == f"{alias}_v1"
    assert [n for n in ws.store.list_collections() if n.startswith(alias)] == [f"{alias}_v1"]
    assert ws.catalog.get(rec.id).version == 1

    report = reindexer(ws).run(rec)
    assert report.switched and report.new_index == f"{alias}_v2"


def test_changes_made_during_the_build_are_replayed(corpus):
    """The UI disables a document while the re-index is parsing: the new index must agree."""
    ws, rec, share = corpus
    target = docs_by_name(ws, rec)["leave-policy.docx"]

    def parse_and_meddle(path):
        if path.name == "it-security.docx":
            ws.index.set_disabled(rec, target.document_id, True)  # via the alias: the live index
        return parse(path)

    report = reindexer(ws, parse=parse_and_meddle).run(rec)
    assert report.caught_up >= 1
    assert docs_by_name(ws, ws.catalog.get(rec.id))["leave-policy.docx"].disabled


QUESTIONS = ["paid annual leave days", "hotel costs per night", "password length", "lost laptop wiped",
             "carry over unused leave", "train travel preferred"]


@pytest.mark.parametrize("corpus", ["edge", "local"], indirect=True)
def test_queries_during_reindex_never_fail_nor_mix_versions(corpus):
    ws, rec, share = corpus
    searcher = Searcher.from_workspace(ws)
    old_ids = {c.id for c in ws.index.iter_chunks(rec)}
    # New content on disk (not ingested): the rebuilt index differs in every chunk id and text.
    write_share(share, ["leave-policy", "travel-expenses", "it-security"], marker="Revision omega.")

    results: list[tuple[float, frozenset[str], list[str]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask(offset: int) -> None:
        i = offset
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = searcher.search(QUESTIONS[i % len(QUESTIONS)], ALICE, ["Handbook"], k=3)
                ids = frozenset(cid for p in report.passages for cid in p.chunk_ids)
                results.append((started, ids, [p.text for p in report.passages]))
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
            i += 1

    def wait_for(n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(results) < n and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(3)
        switch_at: list[float] = []
        report = reindexer(ws, grace_s=0.3, on_switch=lambda old, new: switch_at.append(time.monotonic())).run(rec)
        wait_for(len(results) + 3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert not errors, errors[:3]
    assert report.switched and report.counts["rebuilt"] == 3
    new_ids = {c.id for c in ws.index.iter_chunks(rec)}
    assert old_ids and new_ids and old_ids.isdisjoint(new_ids)
    versions = []
    for _, ids, texts in results:
        assert ids, "a query returned nothing"
        if ids <= old_ids:
            versions.append("old")
            assert not any("omega" in t for t in texts)
        elif ids <= new_ids:
            versions.append("new")
            assert all("omega" in t for t in texts)
        else:
            pytest.fail(f"one result mixed both index versions: {sorted(ids)}")
    assert "old" in versions and "new" in versions
    # Every query that started after the switch ran on the new index.
    assert all(v == "new" for (t, _, _), v in zip(results, versions) if t > switch_at[0])


def test_reindex_cli_switches_and_reports(tmp_path, embedder):
    share = tmp_path / "share"
    write_share(share, ["leave-policy", "parking"])
    data = tmp_path / "docent"
    with Workspace(make_settings(data), embedder=embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        ingest(ws, rec, share)
        alias = ws.index.alias(rec)
    (share / "parking.docx").unlink()
    env = {**os.environ, "DOCENT_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "ui.cli.main", *a], cwd=REPO, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    out = run("reindex", "--collection", "Handbook", "--grace", "0", "--json")
    assert out.returncode == 1, out.stderr  # one file vanished: reported, like a failed file in ingest
    report = json.loads(out.stdout)
    assert report["switched"] and report["new_index"] == f"{alias}_v2"
    assert report["counts"] == {"rebuilt": 1, "carried_over": 0, "missing": 1, "failed": 0, "removed": 0}
    assert list((data / "reports").glob("reindex-*-Handbook.json"))
    unknown = run("reindex", "--collection", "Nope")
    assert unknown.returncode == 2 and "no collection named 'Nope'" in unknown.stderr
    with Workspace(make_settings(data), embedder=embedder) as ws:
        rec = ws.catalog.get("Handbook")
        assert rec.version == 2 and ws.store.resolve_alias(alias) == f"{alias}_v2"
        assert [d.path.rsplit("/", 1)[-1] for d in ws.index.list_documents(rec)] == ["leave-policy.docx"]
        # The embedded index is one process's: while it is held, the CLI says so and exits 3.
        busy = run("reindex", "--collection", "Handbook")
        assert busy.returncode == 3 and "index busy" in busy.stderr
