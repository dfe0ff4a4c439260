"""Issue 11, finding 1: a document's access override and disabled flag are state of the document
(its path within the collection), so a new version of the file (edit + re-ingest, same-name
re-upload, admin re-index) keeps them. Before the fix a new version was written with
``access_groups=None, disabled=False`` and the old chunks carrying the override were deleted."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.sandbox import ParserPool
from retrieval.models import Principal

from .minidocx import write_docx
from .test_ingest_cli import docent

BOARD = ["Board minutes of the March meeting.",
         "The merger codename is Bluebird; the merger stays confidential until the signing.",
         "The board approved the budget for next year."]
CANTEEN = ["The canteen menu mentions the merger codename as a joke: the Bluebird burger.",
           "Lunch is served from half past eleven."]


def _search_paths(data: Path, *args: str) -> list[str]:
    out = docent(data, "search", "merger codename", "-c", "Everyone", "--json", *args)
    assert out.returncode == 0, out.stderr
    return [p["path"] for p in json.loads(out.stdout)["passages"]]


def test_cli_access_override_survives_edit_and_reingest(tmp_path):
    data, share = tmp_path / "d", tmp_path / "share"
    board = write_docx(share / "board.docx", BOARD)
    write_docx(share / "canteen.docx", CANTEEN)
    assert docent(data, "ingest", str(share), "-c", "Everyone").returncode == 0
    assert docent(data, "collections", "groups", "Everyone", "--read", "staff").returncode == 0
    out = docent(data, "docs", "access", str(board), "-c", "Everyone", "--groups", "board")
    assert out.returncode == 0, out.stderr
    eve = ("--as-user", "eve", "--groups", "staff")
    before = _search_paths(data, *eve)
    assert before and not any(p.endswith("board.docx") for p in before)

    write_docx(board, [BOARD[0], BOARD[1].replace("confidential", "strictly confidential"), BOARD[2]])
    out = docent(data, "ingest", str(share), "-c", "Everyone", "--json")
    assert out.returncode == 0, out.stderr
    assert "indexed" in out.stdout  # the edit made a new version

    after = _search_paths(data, *eve)
    assert after and not any(p.endswith("board.docx") for p in after), after
    # A board member still reads the new version.
    assert any(p.endswith("board.docx") for p in _search_paths(data, "--as-user", "bob", "--groups", "board"))


def _ingest(settings, ws, rec, paths):
    with ParserPool(timeout_s=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb,
                    max_file_mb=settings.max_file_mb) as pool:
        return BatchIngest(ws.index, DocumentIndexer(settings, ws.index, ws.embedder), pool.parse).run(rec, paths)


def test_disabled_document_stays_disabled_after_edit_and_reingest(tmp_path, settings, workspace):
    ws = workspace
    rec = ws.catalog.create_collection("Everyone")
    rec = ws.ready_collection(rec.name)
    board = write_docx(tmp_path / "share" / "board.docx", BOARD)
    _ingest(settings, ws, rec, [board])
    doc = ws.index.list_documents(rec)[0]
    ws.index.set_disabled(rec, doc.document_id, True)
    ws.index.set_access(rec, doc.document_id, ["board"])

    write_docx(board, BOARD[:2])
    report = _ingest(settings, ws, rec, [board])
    assert [f.status for f in report.files] == ["indexed"]
    [new] = ws.index.list_documents(rec)
    assert new.file_hash != doc.file_hash
    assert new.disabled is True
    assert new.access_groups == ["board"]
    chunks = ws.index.document_chunks(rec, new.document_id)
    assert chunks and all(c.disabled and c.access_groups == ["board"] for c in chunks)


def test_same_name_reupload_keeps_override_and_disabled_flag(tmp_path, settings, workspace, monkeypatch):
    from ui.usecases import Docent, Upload

    ws = workspace
    rec = ws.catalog.create_collection("Everyone", ["staff"], ["staff"])
    app = Docent.from_settings(settings, workspace=ws)
    admin = Principal(user="admin", groups=["admins"], is_admin=True)
    first = write_docx(tmp_path / "a" / "board.docx", BOARD)
    report = app.upload(admin, rec.name, [Upload("board.docx", first.read_bytes())])
    assert [f.status for f in report.files] == ["indexed"]
    rec = ws.catalog.get(rec.name)
    doc = ws.index.list_documents(rec)[0]
    ws.index.set_access(rec, doc.document_id, ["board"])
    ws.index.set_disabled(rec, doc.document_id, True)

    second = write_docx(tmp_path / "b" / "board.docx", [BOARD[0], "The merger codename changed to Kestrel."])
    report = app.upload(admin, rec.name, [Upload("board.docx", second.read_bytes())])
    assert [f.status for f in report.files] == ["indexed"]
    [new] = ws.index.list_documents(rec)
    assert new.file_hash != doc.file_hash
    assert (new.access_groups, new.disabled) == (["board"], True)


def test_renamed_file_keeps_override_and_disabled_flag(tmp_path, settings, workspace):
    """A file renamed (or moved) on the share is the same document to its readers: the new path
    takes the old entry's access override and disabled flag, and the old entry is pruned."""
    ws = workspace
    rec = ws.ready_collection(ws.catalog.create_collection("Everyone").name)
    share = tmp_path / "share"
    board = write_docx(share / "board.docx", BOARD)
    _ingest(settings, ws, rec, [share])
    doc = ws.index.list_documents(rec)[0]
    ws.index.set_access(rec, doc.document_id, ["board"])
    ws.index.set_disabled(rec, doc.document_id, True)

    board.rename(share / "minutes-march.docx")
    with ParserPool.from_settings(settings) as pool:
        report = BatchIngest(ws.index, DocumentIndexer(settings, ws.index, ws.embedder), pool.parse).run(
            rec, [share], prune=True)
    assert sorted(f.status for f in report.files) == ["indexed", "removed"]
    [new] = ws.index.list_documents(rec)
    assert new.path.endswith("minutes-march.docx") and new.document_id != doc.document_id
    assert (new.access_groups, new.disabled) == (["board"], True)
