"""Checks that one path had and another lacked: summaries under the output safety policy in the
app and in ``docent summarize``; uploads and a single-document re-index under the writers' lock
``docent ingest`` takes; earlier chat turns re-checking access before showing cached passages.

Real parts: the embedded index with real PDFs and the real embedding model, Streamlit's AppTest,
a real HTTP server speaking vLLM's API (fixed reply), real lock files held by another process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from retrieval.models import Principal
from retrieval.settings import Settings

from .conftest import REPO, make_settings
from .minipdf import TRAVEL_POLICY_PAGES, write_pdf
from .vllm_stub import VLLMStub

APP = str(REPO / "ui" / "app.py")
TIMEOUT = 180
ADMIN = Principal(user="admin", groups=["admins"], is_admin=True)
ALICE = Principal(user="alice", groups=["staff"])
BLOCKED = json.dumps([r"re:SECRET-\d+"])
CODES_PAGES = ["Door codes\n\nThe server room door code is SECRET-42. Visitors are always accompanied."]
# What a model does with such a document: repeats it.
LEAKY_SUMMARY = "The server room door code is SECRET-42 [1]. Visitors are always accompanied [1]."


@dataclass
class Site:
    settings: Settings
    res: object
    root: Path
    travel_id: str
    codes_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from ui.services import get_app
    from ui.usecases import Upload

    root = tmp_path_factory.mktemp("parity")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCENT_DATA_DIR", str(root / "docent"))
        mp.setenv("DOCENT_LOCAL_LLM", "none")
        mp.setenv("DOCENT_AUTH_MODE", "builtin")
        mp.setenv("DOCENT_BLOCKED_PATTERNS", BLOCKED)
        mp.delenv("DOCENT_LLM_BASE_URL", raising=False)
        settings = Settings()
        res = get_app(settings)
        res.users.add("alice", "alice-password", groups=["staff"])
        catalog = res.workspace.catalog
        handbook = catalog.create_collection("Handbook", ["everyone"], ["staff"])
        facilities = catalog.create_collection("Facilities", ["everyone"], ["staff"])
        travel = write_pdf(root / "travel-policy.pdf", TRAVEL_POLICY_PAGES, "Travel Policy")
        codes = write_pdf(root / "door-codes.pdf", CODES_PAGES, "Door codes")
        for name, path in (("Handbook", travel), ("Facilities", codes)):
            report = res.upload(ADMIN, name, [Upload(path.name, path.read_bytes())])
            assert [f.status for f in report.files] == ["indexed"], report.files
        index = res.workspace.index
        yield Site(settings, res, root, index.list_documents(handbook)[0].document_id,
                   index.list_documents(facilities)[0].document_id)


def audit_lines(settings: Settings) -> list[dict]:
    from assistant.audit import AuditLog

    path = AuditLog.from_settings(settings).path_for()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


# --- summaries pass the output safety policy, in the app and in the CLI ------------------------


def test_app_summary_that_repeats_blocked_text_is_withheld(site):
    from ui.usecases import Docent

    rec = site.res.workspace.catalog.get("Facilities")
    with VLLMStub(reply=LEAKY_SUMMARY) as stub:
        # The app's facade with a language model: the same opened index, a server to talk to.
        settings = site.settings.model_copy(update={"llm_base_url": stub.base_url})
        res = Docent.from_settings(settings, workspace=lambda: site.res.workspace, users=site.res.users)
        sections = res.summary_sections(ALICE, rec.id, site.codes_id)
        assert any("SECRET-42" in s.text for s in sections)  # the document itself trips the policy
        shown: list[str] = []
        with pytest.raises(PermissionError) as refused:
            for event in res.summarize(ALICE, rec.id, site.codes_id):
                shown.append(event.text if event.type != "final" else event.summary.text)
    assert "withheld" in str(refused.value) and "SECRET" not in str(refused.value)
    assert not any("SECRET-42" in text for text in shown)
    line = audit_lines(settings)[-1]
    assert (line["event"], line["outcome"], line["documents"]) == ("summary", "blocked_output", [site.codes_id])


def test_cli_summary_that_repeats_blocked_text_is_withheld(tmp_path, embedder, monkeypatch, capsys):
    from ingest.batch import BatchIngest
    from ingest.indexer import DocumentIndexer
    from ingest.parse import parse_file
    from retrieval.workspace import Workspace
    from ui.cli.main import main

    share = tmp_path / "share"
    share.mkdir()
    write_pdf(share / "door-codes.pdf", CODES_PAGES, "Door codes")
    settings = make_settings(tmp_path / "docent")
    with Workspace(settings, embedder=embedder) as ws:  # closed again: the CLI opens the index itself
        rec = ws.ready_collection("Facilities", create=True)
        indexer = DocumentIndexer(settings, ws.index, embedder)
        BatchIngest(ws.index, indexer, lambda p: parse_file(p, max_file_mb=10)).run(rec, [share])
    with VLLMStub(reply=LEAKY_SUMMARY) as stub:
        monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("DOCENT_LLM_BASE_URL", stub.base_url)
        monkeypatch.setenv("DOCENT_BLOCKED_PATTERNS", BLOCKED)
        code = main(["summarize", "door-codes.pdf", "--collection", "Facilities"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "withheld" in out.out
    assert "SECRET-42" not in out.out + out.err
    line = audit_lines(settings)[-1]
    assert (line["event"], line["outcome"]) == ("summary", "blocked_output")


def test_cli_ask_says_when_the_policy_stops_an_answer_it_was_streaming(tmp_path, embedder, monkeypatch, capsys):
    """The streamed start stays on screen, so the refusal must follow it, not vanish."""
    from ingest.batch import BatchIngest
    from ingest.indexer import DocumentIndexer
    from ingest.parse import parse_file
    from retrieval.workspace import Workspace
    from ui.cli.main import main

    share = tmp_path / "share"
    share.mkdir()
    write_pdf(share / "door-codes.pdf", CODES_PAGES, "Door codes")
    settings = make_settings(tmp_path / "docent", llm_answer_format="inline")
    with Workspace(settings, embedder=embedder) as ws:
        rec = ws.ready_collection("Facilities", create=True)
        BatchIngest(ws.index, DocumentIndexer(settings, ws.index, embedder),
                    lambda p: parse_file(p, max_file_mb=10)).run(rec, [share])
    with VLLMStub(reply=LEAKY_SUMMARY) as stub:
        monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("DOCENT_LLM_BASE_URL", stub.base_url)
        monkeypatch.setenv("DOCENT_LLM_ANSWER_FORMAT", "inline")
        monkeypatch.setenv("DOCENT_BLOCKED_PATTERNS", BLOCKED)
        code = main(["ask", "What is the server room door code?", "--collection", "Facilities"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "SECRET-42" not in out.out + out.err
    assert "The server room door code" in out.out  # what had streamed before the policy stopped it
    assert "withheld" in out.out  # ...and then why it stopped


# --- uploads and the single-document re-index take the batch job's writers' lock --------------

HOLD = """
import sys
from ingest.run_locks import ingest_locks
from retrieval.settings import Settings
with ingest_locks(Settings(_env_file=None, data_dir=sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def batch_run_holding(site):
    """A process holding what a running ``docent ingest --collection Handbook`` holds."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(site.settings.data_dir), "Handbook"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_upload_and_reindex_refuse_while_a_batch_run_holds_the_collection(site, batch_run_holding):
    from ui.usecases import Upload
    from ui.usecases.errors import LockBusyError

    rec = site.res.workspace.catalog.get("Handbook")
    before = {d.document_id for d in site.res.workspace.index.list_documents(rec)}
    memo = write_pdf(site.root / "memo.pdf", ["Memo\n\nThe office is closed on Friday."], "Memo")
    with pytest.raises(LockBusyError):
        site.res.upload(ADMIN, "Handbook", [Upload(memo.name, memo.read_bytes())])
    with pytest.raises(LockBusyError):
        site.res.reindex_document(ADMIN, "Handbook", site.travel_id)
    assert not (site.res.upload_dir(rec) / memo.name).exists()  # nothing replaced on disk either
    assert {d.document_id for d in site.res.workspace.index.list_documents(rec)} == before


def test_upload_runs_once_the_batch_run_has_let_go(site):
    from ui.usecases import Upload

    memo = write_pdf(site.root / "memo2.pdf", ["Memo\n\nThe canteen opens at noon."], "Memo two")
    report = site.res.upload(ADMIN, "Handbook", [Upload(memo.name, memo.read_bytes())])
    assert [f.status for f in report.files] == ["indexed"]


# --- an earlier chat turn re-checks access before showing its cached passages ------------------


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def test_earlier_turn_hides_passages_of_a_document_the_user_lost(site):

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="login_user").input("alice")
    at.text_input(key="login_password").input("alice-password")
    at.button[0].click().run()
    at.multiselect(key="collections").set_value(["Handbook"]).run()
    at.chat_input[0].set_value("What is the daily meal allowance?").run()
    assert not at.exception, at.exception
    assert "<mark>" in texts(at) and any(b.label == "View page" for b in at.button)
    try:
        site.res.set_document_access(ADMIN, "Handbook", site.travel_id, ["finance"])  # alice is not in it
        at.run()
        assert not at.exception, at.exception
        html = texts(at)
        assert "no longer available to you" in html
        assert "<mark>" not in html and 'class="src-body"' not in html  # no cached passage text
        assert not any(b.label == "View page" for b in at.button)
    finally:
        site.res.set_document_access(ADMIN, "Handbook", site.travel_id, None)
    at.run()
    assert "<mark>" in texts(at)  # readable again: shown again
