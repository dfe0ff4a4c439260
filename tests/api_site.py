"""The site the API tests talk to: a real ``docent api`` over the embedded index, two
collections (HR for alice's group, Finance for bob's) holding real PDFs, one key per user and
the real local model answering."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
from openai import OpenAI

from retrieval.models import Principal
from ui.usecases import Docent, Upload

from .api_server import running_api
from .conftest import make_settings
from .minipdf import FALCON_PAGES, TRAVEL_POLICY_PAGES, write_pdf

ADMIN = Principal(user="root", groups=["admins"], is_admin=True)
QUESTION = "What is the daily meal allowance for business trips?"
PUBLIC = "https://docent.example.com"


@dataclass
class Site:
    app: Docent
    base: str
    alice: str  # reads HR
    bob: str  # reads Finance
    root: Path

    def client(self, key: str) -> OpenAI:
        return OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=120)

    def post(self, path: str, key: str | None, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.base + path, headers=headers | kw.pop("headers", {}), timeout=120, **kw)


@contextmanager
def api_site(root: Path, embedder, llama_server) -> Iterator[Site]:
    settings = make_settings(root / "docent", llm_base_url=llama_server.base_url, llm_temperature=0.0,
                             llm_answer_tokens=160, questions_per_minute=0, api_requests_per_minute=0,
                             public_url=PUBLIC)
    app = Docent.from_settings(settings, embedder=embedder)
    app.users.add("alice", "alice-password", groups=["staff"])
    app.users.add("bob", "bob-password-1", groups=["finance"])
    catalog = app.workspace.catalog
    catalog.create_collection("HR", ["staff"], ["staff"])
    catalog.create_collection("Finance", ["finance"], ["finance"])
    for name, pages, title in (("HR", TRAVEL_POLICY_PAGES, "Travel Policy"), ("Finance", FALCON_PAGES, "Falcon")):
        pdf = write_pdf(root / f"{title}.pdf", pages, title)
        report = app.upload(ADMIN, name, [Upload(pdf.name, pdf.read_bytes())])
        assert [f.status for f in report.files] == ["indexed"], report.files
    _, alice = app.create_api_key(ADMIN, "alice", "tests")
    _, bob = app.create_api_key(ADMIN, "bob", "tests")
    try:
        with running_api(app) as base:
            yield Site(app, base, alice, bob, root)
    finally:
        app.close()
