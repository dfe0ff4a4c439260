"""The Streamlit app's pages, driven by Streamlit's AppTest on a real embedded index with real
documents and the real embedding model (extractive answers: no LLM is configured)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from retrieval.models import Principal
from retrieval.settings import Settings

from .conftest import REPO
from .minipdf import FALCON_PAGES, TRAVEL_POLICY_PAGES, write_pdf

APP = str(REPO / "ui" / "app.py")
TIMEOUT = 180


@dataclass
class Site:
    settings: Settings
    res: object
    admin_password: str
    falcon_id: str
    finance_id: str
    pdf: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from ui.services import get_app
    from ui.usecases import Upload

    root = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCENT_DATA_DIR", str(root / "docent"))
        mp.setenv("DOCENT_LOCAL_LLM", "none")
        mp.setenv("DOCENT_AUTH_MODE", "builtin")
        mp.setenv("DOCENT_AUDIT_INCLUDE_TEXT", "true")  # feedback keeps its text (and exports) only then
        mp.delenv("DOCENT_LLM_BASE_URL", raising=False)
        settings = Settings()
        res = get_app(settings)  # the same cached facade the app's runs get
        admin_password = (settings.data_dir / "initial-admin.txt").read_text().split("password: ")[1].split()[0]
        res.users.add("alice", "alice-password", groups=["staff"])
        res.users.add("bob", "bob-password")
        res.users.add("fiona", "fiona-password", groups=["finance"])
        catalog = res.workspace.catalog
        catalog.create_collection("Handbook", ["everyone"], ["staff"])
        finance = catalog.create_collection("Finance", ["finance"], ["finance"])
        admin = Principal(user="admin", groups=["admins"], is_admin=True)
        travel = write_pdf(root / "travel-policy.pdf", TRAVEL_POLICY_PAGES, "Travel Policy")
        falcon = write_pdf(root / "falcon.pdf", FALCON_PAGES, "Project Falcon")
        for name, path in (("Handbook", travel), ("Finance", falcon)):
            report = res.upload(admin, name, [Upload(path.name, path.read_bytes())])
            assert [f.status for f in report.files] == ["indexed"], report.files
        falcon_id = res.workspace.index.list_documents(finance)[0].document_id
        yield Site(settings, res, admin_password, falcon_id, finance.id, travel)


def login(user: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="login_user").input(user)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in at.error] + [e.value for e in at.info] + [w.value for w in at.warning]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_login_refuses_a_wrong_password_and_admits_the_first_admin(site):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "initial-admin.txt" in texts(at)  # the first-start hint says where the password is
    at.text_input(key="login_user").input("admin")
    at.text_input(key="login_password").input("not-the-password")
    at.button[0].click().run()
    assert "Wrong user name or password." in texts(at)
    assert not at.title

    at = login("admin", site.admin_password)
    assert [t.value for t in at.title] == ["Ask your documents"]
    assert at.multiselect(key="collections").options == ["Finance", "Handbook"]


def test_employee_chat_answers_with_citations_sources_and_feedback(site):
    at = login("alice", "alice-password")
    assert at.multiselect(key="collections").value == ["Handbook"]
    at.chat_input[0].set_value("What is the daily meal allowance?").run()
    assert not at.exception, at.exception
    html = texts(at)
    assert '<a class="cite" href="#src-' in html
    assert re.search(r"<mark>[^<]*The daily meal allowance for business trips is 45 euros per day\.</mark>", html)
    assert '<span class="src-loc">p. 2</span>' in html
    # The source panel: page preview after the access check, for a reader of the collection.
    view = next(b for b in at.button if b.label == "View page")
    view.click().run()
    assert not at.exception, at.exception
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    assert captions == ["Page 2 of travel-policy.pdf"], "the dialog shows the cited page"

    at.feedback[0].set_value(1).run()
    records = site.res.feedback_store.list(user="alice")
    assert len(records) == 1 and records[0].rating == "up"
    assert records[0].question == "What is the daily meal allowance?"
    assert any("45 euros" in p.text for p in records[0].cited_passages)
    comment = next(t for t in at.text_input if t.placeholder.startswith("Optional"))
    comment.input("Exactly what I needed").run()
    assert site.res.feedback_store.list(user="alice")[0].comment == "Exactly what I needed"

    # A follow-up keeps the conversation; "New chat" clears it.
    at.chat_input[0].set_value("And within how many days are receipts due?").run()
    assert len(at.chat_message) == 4 and "30 days" in texts(at)
    next(b for b in at.button if b.label == "New chat").click().run()
    assert len(at.chat_message) == 0


def test_user_without_access_neither_sees_nor_retrieves_a_collection(site):
    from ui.usecases.errors import DocumentUnavailableError

    at = login("bob", "bob-password")
    assert at.multiselect(key="collections").options == ["Handbook"]
    at.chat_input[0].set_value("What is the budget of Project Falcon?").run()
    assert "9 million" not in texts(at)
    with pytest.raises(ValueError):
        at.switch_page("views/admin_collections.py")  # not even registered for employees

    # Below the UI: asking the services directly for the collection returns nothing of it.
    bob = Principal(user="bob")
    events = list(site.res.ask(bob, ["Finance"], "What is the budget of Project Falcon?"))
    final = events[-1].answer
    assert final.mode == "refused" and not final.passages
    assert site.res.documents(bob, ["Finance"]) == []
    with pytest.raises(DocumentUnavailableError):
        site.res.download(bob, site.finance_id, site.falcon_id)
    fiona = Principal(user="fiona", groups=["finance"])
    assert site.res.download(fiona, site.finance_id, site.falcon_id).data.startswith(b"%PDF")


def test_admin_functions_refuse_non_admins(site):
    from ui.usecases.errors import AdminOnlyError

    bob = Principal(user="bob")
    for call in (lambda: site.res.collections_overview(bob),
                 lambda: site.res.list_users(bob),
                 lambda: site.res.delete_collection(bob, "Handbook"),
                 lambda: site.res.export_feedback_zip(bob)):
        with pytest.raises(AdminOnlyError):
            call()


def test_upload_page_reports_each_file(site):
    at = login("alice", "alice-password")
    at.switch_page("views/upload.py").run()
    assert at.selectbox(key="upload_collection").options == ["Handbook"]  # Finance is not writable for alice
    pdf = site.pdf.read_bytes()
    at.file_uploader[0].set_value([("memo.pdf", pdf.replace(b"Travel Policy", b"Memo Policy!!"), "application/pdf"),
                                   ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")]).run()
    next(b for b in at.button if b.label == "Add to collection").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    results = dict(zip(table["File"], table["Result"]))
    assert results == {"memo.pdf": "indexed", "broken.pdf": "failed"}
    reason = table.loc[table["File"] == "broken.pdf", "Details"].iloc[0]
    assert reason.startswith("corrupt")
    assert "1 file(s) indexed, 1 failed" in texts(at)

    # The admin's ingestion history lists the failure with its reason.
    admin = login("admin", site.admin_password)
    admin.switch_page("views/admin_history.py").run()
    admin.toggle(key="history_failed").set_value(True).run()
    assert admin.dataframe[0].value["Failed"].tolist() == [1]
    failures = admin.expander[0].dataframe[0].value
    assert failures["File"].str.endswith("broken.pdf").all() and failures["Reason"].iloc[0].startswith("corrupt")


def test_admin_pages_manage_collections_documents_history_users(site):
    at = login("admin", site.admin_password)
    at.switch_page("views/admin_collections.py").run()
    assert "Finance" in at.dataframe[0].value["Collection"].tolist()
    form = at.text_input  # the create form: name, description
    next(t for t in form if t.label == "Name").input("Scratch")
    next(b for b in at.button if b.label == "Create collection").click().run()
    assert "Scratch" in at.dataframe[0].value["Collection"].tolist()
    at.selectbox(key="admin_collection").select("Scratch").run()
    at.text_input(key=f"confirm-{site.res.workspace.catalog.get('Scratch').id}").input("Scratch").run()
    next(b for b in at.button if b.label == "Delete collection").click().run()
    assert "Scratch" not in at.dataframe[0].value["Collection"].tolist()

    # Documents: disable the travel policy; search no longer finds it for anyone.
    at.switch_page("views/admin_documents.py").run()
    at.selectbox(key="docs_collection").select("Handbook").run()
    assert "travel-policy.pdf" in at.dataframe[0].value["File"].tolist()
    travel = next(i for i in at.selectbox(key="docs-pick-Handbook").options if "travel-policy" in i)
    at.selectbox(key="docs-pick-Handbook").select(travel).run()
    next(b for b in at.button if b.label == "Disable").click().run()
    row = at.dataframe[0].value.set_index("File").loc["travel-policy.pdf"]
    assert row["Status"] == "disabled"
    final = list(site.res.ask(Principal(user="alice", groups=["staff"]), ["Handbook"],
                              "What is the daily meal allowance?"))[-1].answer
    assert all("travel-policy" not in p.path for p in final.passages)
    next(b for b in at.button if b.label == "Enable").click().run()
    assert at.dataframe[0].value.set_index("File").loc["travel-policy.pdf"]["Status"] == "searchable"

    at.switch_page("views/admin_history.py").run()
    at.selectbox(key="history_period").select("All time").run()
    history = at.dataframe[0].value
    assert "upload" in set(history["Source"]) and {"Handbook", "Finance"} <= set(history["Collection"])

    at.switch_page("views/admin_users.py").run()
    assert {"admin", "alice", "bob", "fiona"} <= set(at.dataframe[0].value["User"])
    answer = list(site.res.ask(Principal(user="fiona", groups=["finance"]), ["Finance"],
                               "What is the budget of Project Falcon?"))[-1].answer
    site.res.feedback_store.add("fiona", "What is the budget of Project Falcon?", answer, "down", "too vague", ["Finance"])
    at.switch_page("views/admin_feedback.py").run()
    assert "too vague" in at.dataframe[0].value["Comment"].tolist()
    import io
    import zipfile

    admin = Principal(user="admin", is_admin=True)
    names = zipfile.ZipFile(io.BytesIO(site.res.export_feedback_zip(admin))).namelist()
    assert sorted(names) == ["docent-feedback/corpus.jsonl", "docent-feedback/qrels/test.tsv",
                             "docent-feedback/queries.jsonl"]


def test_removed_user_is_logged_out_at_the_next_click(site):
    site.res.users.add("temp", "temp-password")
    at = login("temp", "temp-password")
    assert at.title
    site.res.users.remove("temp")
    at.run()
    assert not at.title and "Log in" in [b.label for b in at.button]


def test_summarize_lists_readable_documents_and_says_why_without_a_model(site):
    at = login("bob", "bob-password")
    at.switch_page("views/summarize.py").run()
    picker = at.selectbox(key="summary_doc")
    labels = picker.options
    assert any("travel-policy.pdf" in label for label in labels)
    assert not any("falcon" in label.lower() for label in labels)  # Finance is not bob's
    picker.select_index(0).run()
    assert "none is configured" in texts(at)
    assert next(b for b in at.button if b.label == "Summarize").disabled


def test_sections_for_summaries_follow_pages(site):
    from assistant.document_sections import sections_from_chunks

    rec = site.res.workspace.catalog.get("Handbook")
    doc = next(d for d in site.res.workspace.index.list_documents(rec) if d.path.endswith("travel-policy.pdf"))
    chunks = site.res.read_document(Principal(user="bob"), rec.id, doc.document_id)
    sections = sections_from_chunks(chunks)
    assert [s.label for s in sections] == ["p. 1", "p. 2"]
    assert sections[1].text.startswith("Meal allowance") and "45 euros" in sections[1].text
    assert sections[0].text.count("This policy applies") == 1  # chunk overlaps are not repeated


def test_a_busy_index_is_reported_in_plain_words(tmp_path, monkeypatch):
    from retrieval.store.factory import index_lock

    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "busy"))
    monkeypatch.setenv("DOCENT_LOCAL_LLM", "none")
    settings = Settings()
    from ui.auth.users import UserStore

    UserStore.from_settings(settings).add("admin", "admin-password", role="admin")
    lock = index_lock(settings).acquire()  # as a running `docent ingest` would hold it
    try:
        at = login("admin", "admin-password")
        message = texts(at)
        assert "The document index is in use by another Docent process" in message
        assert f"pid {__import__('os').getpid()}" in message
    finally:
        lock.release()


def test_generated_answers_mark_unsupported_sentences_and_summaries_cite_pages(site):
    """With a language model (a real HTTP server speaking vLLM's API, fixed reply), a claim its
    citation does not support is shown marked; summaries stream with page citations."""
    from .vllm_stub import VLLMStub

    reply = "This policy applies to every employee who travels for work [1]. Flights are always first class [1]."
    with VLLMStub(reply=reply) as stub, pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCENT_LLM_BASE_URL", stub.base_url)
        mp.setenv("DOCENT_LLM_ANSWER_FORMAT", "inline")
        at = login("bob", "bob-password")
        assert "Qwen/Qwen2.5-7B-Instruct" in texts(at)  # the sidebar names the model
        at.chat_input[0].set_value("Who does the travel policy apply to?").run()
        assert not at.exception, at.exception
        html = texts(at)
        unsupported = re.findall(r'<span class="unsupported"[^>]*>(.*?)</span>', html)
        assert len(unsupported) == 1 and "first class" in unsupported[0]
        assert "travels for work" in html.split('class="unsupported"')[0]

        at.switch_page("views/summarize.py").run()
        picker = at.selectbox(key="summary_doc")
        picker.select_index(next(i for i, o in enumerate(picker.options) if "travel-policy.pdf" in o)).run()
        next(b for b in at.button if b.label == "Summarize").click().run()
        assert not at.exception, at.exception
        html = texts(at)
        assert "every employee who travels for work" in html and 'href="#sum-' in html
        assert '<span class="src-title">p. 1</span>' in html and "<mark>" in html
        assert any("chat/completions" in r for r in stub.requests)


def test_citation_link_page_shows_a_readable_source_and_nothing_else(site):
    """``/source?c=&d=&p=``: where the API's citation links land, behind the same login."""
    def open_link(user: str, password: str) -> AppTest:
        at = login(user, password)
        at.query_params.update({"c": site.finance_id, "d": site.falcon_id, "p": "1"})
        return at.switch_page("views/source.py").run()

    at = open_link("fiona", "fiona-password")
    assert not at.exception, at.exception
    shown = texts(at)
    assert "#### Project Falcon" in shown and "p&#46; 1 · falcon&#46;pdf" in shown and not at.warning
    assert at.get("image"), "the cited page is shown as an image"
    at = open_link("bob", "bob-password")
    assert "not available to you" in texts(at) and "9 million" not in texts(at)
