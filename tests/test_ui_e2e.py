"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run`
(started the way `docent ui` starts it), a real embedded index and the real embedding model.

Needs /usr/bin/chromium (`bash scripts/ensure_browser.sh`); Playwright's own browser download
is never used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import REPO, make_settings
from .minipdf import FALCON_PAGES, TRAVEL_POLICY_PAGES, write_pdf

CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temporary folder unless DOCENT_SCREENSHOTS names one (docs/screenshots
# is refreshed that way, by hand, not by every CI run).
SCREENSHOTS_ENV = "DOCENT_SCREENSHOTS"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="run scripts/ensure_browser.sh first")

ADMIN_PW = "admin-password-1"
BOB_PW = "bob-password-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    """A data folder with users, two collections and the Finance report indexed, then the app."""
    from ingest.batch import BatchIngest
    from ingest.indexer import DocumentIndexer
    from ingest.parse import parse_file
    from retrieval.workspace import Workspace
    from ui.auth.users import UserStore

    root = tmp_path_factory.mktemp("e2e")
    settings = make_settings(root / "docent", local_llm="none")
    users = UserStore.from_settings(settings)
    users.add("admin", ADMIN_PW, role="admin")
    users.add("bob", BOB_PW)
    falcon = write_pdf(root / "falcon.pdf", FALCON_PAGES, "Project Falcon")
    with Workspace(settings, embedder=embedder) as ws:  # closed again: the app must hold the index alone
        ws.catalog.create_collection("Handbook", ["everyone"], ["staff"])
        ws.catalog.create_collection("Finance", ["finance"], ["finance"])
        rec = ws.ready_collection("Finance")
        indexer = DocumentIndexer(settings, ws.index, ws.embedder)
        BatchIngest(ws.index, indexer, lambda p: parse_file(p, 10)).run(rec, [falcon])
    travel = write_pdf(root / "travel-policy.pdf", TRAVEL_POLICY_PAGES, "Travel Policy")

    with running_app(settings, root / "streamlit.log") as url:
        yield {"url": url, "travel": travel}


@contextmanager
def running_app(settings, log_path: Path, **env_extra: str):
    """`streamlit run` as `docent ui` starts it, on a free port, stopped afterwards."""
    from ui.cli.ui_cmds import streamlit_command

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCENT_")}
    env.update(DOCENT_DATA_DIR=str(settings.data_dir), DOCENT_LOCAL_LLM="none", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", **env_extra)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(streamlit_command(settings, port, "127.0.0.1"), cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("streamlit did not start: " + log_path.read_text()[-2000:])
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    pg = context.new_page()
    yield pg
    context.close()


def log_in(page, url: str, user: str, password: str) -> None:
    if url:
        page.goto(url)
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Ask your documents").wait_for()


def ask(page, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_upload_ask_click_citation_and_see_the_page(server, page, shots):
    log_in(page, server["url"], "admin", ADMIN_PW)
    page.get_by_role("link", name="Upload").click()
    page.get_by_role("heading", name="Add documents").wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Collection").click()
    page.get_by_role("option", name="Handbook").click()
    page.locator("input[type=file]").set_input_files(str(server["travel"]))
    page.get_by_role("button", name="Add to collection").click()
    page.get_by_text("1 file(s) indexed").wait_for(timeout=300_000)
    page.get_by_test_id("stDataFrame").first.wait_for()  # the per-file results table

    page.get_by_role("link", name="Ask").click()
    page.get_by_role("heading", name="Ask your documents").wait_for()
    ask(page, "What is the daily meal allowance?")
    cite = page.locator("a.cite").first
    cite.wait_for(timeout=300_000)
    target = cite.get_attribute("href")
    cite.click()
    # The citation leads to its source card: title, page, and the quote highlighted.
    page.wait_for_function("h => location.hash === h", arg=target)
    card = page.locator(f"div.src-card{target}")
    assert card.is_visible()
    assert "Travel Policy" in card.inner_text() and "p. 2" in card.inner_text()
    assert "45 euros per day" in card.locator("mark").first.inner_text()
    page.screenshot(path=str(shots / "chat.png"), full_page=False)

    # The source panel shows the cited page of the original PDF.
    page.get_by_role("button", name="View page").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Page 2 of travel-policy.pdf").wait_for()
    assert dialog.get_by_role("button", name="Open at page 2").is_visible()
    assert dialog.get_by_role("button", name="Download original").is_visible()
    assert dialog.locator("img").first.is_visible()
    page.screenshot(path=str(shots / "source-page.png"))
    with page.expect_popup() as popup:
        dialog.get_by_role("button", name="Open at page 2").click()
    assert popup.value.url.startswith("blob:") and popup.value.url.endswith("#page=2")
    popup.value.close()
    with page.expect_download() as download:
        dialog.get_by_role("button", name="Download original").click()
    assert download.value.suggested_filename == "travel-policy.pdf"
    assert Path(download.value.path()).read_bytes() == server["travel"].read_bytes()
    page.keyboard.press("Escape")

    page.get_by_role("link", name="Documents").click()
    page.get_by_role("heading", name="Documents").wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Collection").click()
    page.get_by_role("option", name="Handbook").click()
    page.get_by_text(re.compile(r"uploads/.+/travel-policy\.pdf$")).wait_for()
    page.get_by_role("button", name="Re-index").wait_for()
    page.get_by_test_id("stDataFrame").first.wait_for()
    page.screenshot(path=str(shots / "admin-documents.png"))


def test_user_without_access_cannot_see_or_retrieve_a_collection(server, page):
    log_in(page, server["url"], "bob", BOB_PW)
    sidebar = page.get_by_test_id("stSidebar")
    picker = sidebar.get_by_test_id("stMultiSelect")
    assert "Finance" not in picker.inner_text()
    picker.click()
    options = [o.inner_text() for o in page.get_by_role("option").all()]
    assert "Finance" not in options
    page.keyboard.press("Escape")
    assert sidebar.get_by_role("link", name="Collections").count() == 0  # no admin pages

    ask(page, "What is the confidential budget of Project Falcon?")
    page.get_by_test_id("stChatMessage").nth(1).wait_for(timeout=300_000)
    page.wait_for_function(
        "() => !document.body.innerText.includes('Searching your documents')", timeout=300_000)
    body = page.locator("body").inner_text()
    assert "9 million" not in body and "Falcon budget" not in body
    assert not re.search(r"falcon\.pdf", body, re.I)

    # An admin URL typed by hand falls back to the assistant: the page is not registered for bob
    # (still logged in after the page load: the session cookie).
    page.goto(server["url"] + "/admin-collections")
    page.get_by_role("heading", name="Ask your documents").wait_for()
    assert page.get_by_role("heading", name="Collections").count() == 0
    assert page.get_by_role("heading", name="Create collection").count() == 0


def test_builtin_login_survives_a_reload_until_logout_or_a_password_change(tmp_path, browser):
    """Issue 11, finding 5: the login lives in a signed cookie, which a password change voids."""
    from ui.auth.users import UserStore

    settings = make_settings(tmp_path / "docent", local_llm="none")
    users = UserStore.from_settings(settings)
    users.add("admin", ADMIN_PW, role="admin")
    users.add("bob", BOB_PW)
    has_cookie = "() => document.cookie.includes('docent_session=')"
    with running_app(settings, tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(120_000)
        pg = context.new_page()
        log_in(pg, url, "bob", BOB_PW)
        pg.wait_for_function(has_cookie)
        assert [c["sameSite"] for c in context.cookies() if c["name"] == "docent_session"] == ["Strict"]
        pg.reload()
        pg.get_by_role("heading", name="Ask your documents").wait_for()

        pg.get_by_role("button", name="Log out").click()
        pg.get_by_role("textbox", name="User name").wait_for()
        pg.wait_for_function(f"() => !({has_cookie})()")
        pg.reload()
        pg.get_by_role("textbox", name="User name").wait_for()

        log_in(pg, "", "bob", BOB_PW)
        pg.wait_for_function(has_cookie)
        users.set_password("bob", "bob-new-password-1")  # e.g. `docent users passwd bob` on the server
        pg.reload()
        pg.get_by_role("textbox", name="User name").wait_for()
        assert pg.get_by_role("heading", name="Ask your documents").count() == 0
        context.close()


def test_proxy_login_takes_user_and_groups_from_trusted_headers(tmp_path, browser):
    """Behind a reverse proxy the app trusts its user and groups headers (and nothing else logs in)."""
    from retrieval.catalog import Catalog

    settings = make_settings(tmp_path / "docent", local_llm="none", auth_mode="proxy")
    catalog = Catalog(settings.catalog_path)
    catalog.create_collection("Handbook", ["everyone"], [])
    catalog.create_collection("Finance", ["finance"], [])
    with running_app(settings, tmp_path / "streamlit.log", DOCENT_AUTH_MODE="proxy") as url:
        anonymous = browser.new_context()
        pg = anonymous.new_page()
        pg.goto(url)
        pg.get_by_text("No user was announced by the reverse proxy").wait_for(timeout=120_000)
        anonymous.close()

        headers = {"X-Forwarded-User": "carol@example.com", "X-Forwarded-Groups": "finance,admins"}
        proxied = browser.new_context(extra_http_headers=headers, viewport={"width": 1400, "height": 1000})
        pg = proxied.new_page()
        pg.goto(url)
        pg.get_by_role("heading", name="Ask your documents").wait_for(timeout=120_000)
        sidebar = pg.get_by_test_id("stSidebar")
        assert "carol@example.com" in sidebar.inner_text()
        assert "Finance" in sidebar.get_by_test_id("stMultiSelect").inner_text()
        assert sidebar.get_by_role("link", name="Collections").count() == 1  # member of the admin group
        assert sidebar.get_by_role("button", name="Log out").count() == 0  # the proxy owns the session
        proxied.close()
