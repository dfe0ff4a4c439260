"""The batch job on real documents, a real embedding model and the real embedded index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from docx import Document

from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.parse import parse_file
from retrieval.models import Chunk
from retrieval.store.base import Filter, Match

from .conftest import REPO

SAMPLES = REPO / "data" / "samples"


class CountingEmbedder:
    """The real embedder, counting how many passages it was asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.dim = inner.dim
        self.model_id = inner.model_id
        self.embedded = 0

    def embed_passages(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_passages(texts)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


# Most tests need only a few small files; the two-page papers are embedded in one test only.
SMALL = ("travel-policy.docx", "leave-policy-zh.docx", "fake-memo.pdf")


@pytest.fixture
def all_samples(tmp_path) -> Path:
    dst = tmp_path / "share"
    shutil.copytree(SAMPLES, dst, ignore=shutil.ignore_patterns("*.md"))
    return dst


@pytest.fixture
def folder(tmp_path) -> Path:
    dst = tmp_path / "share"
    dst.mkdir()
    for name in SMALL:
        shutil.copy(SAMPLES / name, dst / name)
    return dst


class Job:
    def __init__(self, ws, embedder):
        self.ws = ws
        self.embedder = CountingEmbedder(embedder)
        self.parsed: list[Path] = []
        self.rec = ws.ready_collection("Samples", create=True)

    def parse(self, path: Path):
        self.parsed.append(path)
        return parse_file(path, max_file_mb=50)

    def run(self, roots, prune=False):
        indexer = DocumentIndexer(self.ws.settings, self.ws.index, self.embedder)
        return BatchIngest(self.ws.index, indexer, self.parse).run(self.rec, roots, prune=prune)

    def chunks(self) -> list[Chunk]:
        return list(self.ws.index.iter_chunks(self.rec))


@pytest.fixture
def job(workspace, embedder) -> Job:
    return Job(workspace, embedder)


def by_name(chunks, name):
    return [c for c in chunks if Path(c.path).name == name]


def test_first_ingest_records_exact_provenance(job, all_samples):
    folder = all_samples
    report = job.run([folder])
    statuses = {Path(f.path).name: f.status for f in report.files}
    assert statuses == {n: "indexed" for n in (
        "fake-memo.pdf", "handbook-1p.docx", "layout-parser-paper-fast.pdf", "leave-policy-zh.docx",
        "multi-column-2p.pdf", "travel-policy.docx")}
    assert report.exit_code == 0
    chunks = job.chunks()

    pdf = by_name(chunks, "layout-parser-paper-fast.pdf")
    assert {c.page for c in pdf} == {1, 2}
    assert all(c.pages == 2 for c in pdf)
    page2 = parse_file(folder / "layout-parser-paper-fast.pdf", 50)
    for c in pdf:  # offsets point at the passage inside the extracted text
        assert page2.text[c.start : c.end] == c.text

    travel = by_name(chunks, "travel-policy.docx")
    flights = [c for c in travel if "Economy class" in c.text]
    assert flights and flights[0].heading_path == ["1. Booking travel", "1.1 Flights"]
    tables = [c for c in travel if c.kind == "table"]
    assert tables and tables[0].text.startswith("City | Hotel limit per night | Meal allowance per day")
    assert "Shanghai | CNY 1,200 | CNY 350" in tables[0].text
    assert tables[0].heading_path == ["2. Expenses", "2.1 Daily allowances"]
    assert not any("do not distribute" in c.text or "Policy owner" in c.text for c in travel), "no headers/footers"

    zh = by_name(chunks, "leave-policy-zh.docx")
    annual = [c for c in zh if "十五天带薪年假" in c.text]
    assert annual and annual[0].heading_path == ["第一章 年假"]
    assert all(c.title == "员工休假制度" for c in zh)

    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))
    for c in chunks:
        assert c.n_chunks == len([x for x in chunks if x.document_id == c.document_id])


def test_rerun_on_unchanged_folder_parses_and_embeds_nothing(job, folder):
    job.run([folder])
    before = sorted(c.id for c in job.chunks())
    job.parsed.clear()
    job.embedder.embedded = 0
    report = job.run([folder])
    assert {f.status for f in report.files} == {"unchanged"}
    assert job.parsed == [] and job.embedder.embedded == 0
    assert sorted(c.id for c in job.chunks()) == before


def test_touched_but_identical_file_is_unchanged_by_hash(job, folder):
    job.run([folder])
    target = folder / "fake-memo.pdf"
    target.write_bytes(target.read_bytes())  # new mtime, same content
    job.parsed.clear()
    report = job.run([folder])
    assert {f.status for f in report.files} == {"unchanged"}
    assert job.parsed == []


def _rewrite_docx(path: Path, text: str) -> None:
    doc = Document()
    doc.add_heading("Changed", 1)
    doc.add_paragraph(text)
    doc.save(path)


def test_changed_file_replaces_old_version_completely(job, folder):
    job.run([folder])
    old = {c.id for c in by_name(job.chunks(), "travel-policy.docx")}
    _rewrite_docx(folder / "travel-policy.docx", "All travel now needs two approvals.")
    report = job.run([folder])
    changed = [f for f in report.files if f.status == "indexed"]
    assert [Path(f.path).name for f in changed] == ["travel-policy.docx"]
    new = by_name(job.chunks(), "travel-policy.docx")
    assert {c.id for c in new}.isdisjoint(old)
    assert [c.text for c in new] == ["All travel now needs two approvals."]
    assert new[0].heading_path == ["Changed"]


def test_prune_removes_only_vanished_files_under_the_roots(job, folder):
    job.run([folder])
    (folder / "fake-memo.pdf").unlink()
    report = job.run([folder])
    assert by_name(job.chunks(), "fake-memo.pdf"), "without --prune nothing is removed"
    assert not any(f.status == "removed" for f in report.files)
    report = job.run([folder], prune=True)
    assert [Path(f.path).name for f in report.files if f.status == "removed"] == ["fake-memo.pdf"]
    assert not by_name(job.chunks(), "fake-memo.pdf")
    assert by_name(job.chunks(), "travel-policy.docx")


def test_chunk_ids_are_deterministic_across_indexes(tmp_path, embedder, folder):
    from retrieval.workspace import Workspace

    from .conftest import make_settings

    id_sets = []
    for name in ("a", "b"):
        with Workspace(make_settings(tmp_path / name), embedder=embedder) as ws:
            j = Job(ws, embedder)
            j.run([folder])
            id_sets.append(sorted((c.id, c.content_hash) for c in j.chunks()))
    assert id_sets[0] == id_sets[1]


class CrashAfterFirstUpsert(Exception):
    pass


def test_interrupted_rewrite_keeps_old_version_visible_then_recovers(job, folder):
    """A crash between writing a new version's chunks and its completion marker (chunk 0)
    leaves the old version whole; the next run completes the new one and removes the old."""
    job.run([folder])
    old = sorted(c.text for c in by_name(job.chunks(), "travel-policy.docx"))
    text = " ".join(f"Rule {i}: every trip of type {i} needs form T-{i} signed by finance." for i in range(80))
    _rewrite_docx(folder / "travel-policy.docx", text)

    store = job.ws.index.store
    real_upsert = store.upsert
    calls = []

    def failing_upsert(name, chunks, dense, sparse):
        calls.append(len(chunks))
        real_upsert(name, chunks, dense, sparse)
        raise CrashAfterFirstUpsert()

    store.upsert = failing_upsert
    with pytest.raises(CrashAfterFirstUpsert):
        job.run([folder])
    store.upsert = real_upsert
    assert calls and calls[0] > 1, "the new version's body was written before the crash"

    visible = job.ws.index.document_versions(job.rec)
    travel = [v for p, v in visible.items() if p.endswith("travel-policy.docx")][0]
    assert len(travel) == 1, "only the old, complete version counts"
    complete_old = [c for c in by_name(job.chunks(), "travel-policy.docx") if c.file_hash == travel[0].file_hash]
    assert sorted(c.text for c in complete_old) == old

    job.run([folder])
    final = by_name(job.chunks(), "travel-policy.docx")
    assert len({c.file_hash for c in final}) == 1
    assert len(final) == final[0].n_chunks > 1
    assert all("needs form T-" in c.text for c in final)


def test_access_override_and_disable_are_payload_updates(job, folder):
    job.run([folder])
    doc = next(d for d in job.ws.index.list_documents(job.rec) if d.path.endswith("fake-memo.pdf"))
    job.ws.index.set_access(job.rec, doc.document_id, ["legal"])
    job.ws.index.set_disabled(job.rec, doc.document_id, True)
    chunks = by_name(job.chunks(), "fake-memo.pdf")
    assert all(c.access_groups == ["legal"] and c.disabled for c in chunks)
    n = job.ws.index.count(job.rec, Filter(must=(Match("access_groups", ("legal",)),)))
    assert n == len(chunks)
