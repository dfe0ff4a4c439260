"""Adversarial access suite: over 1,000 seeded random probes of every read path of the
application layer (``ui.usecases.Docent``), interleaved with the state changes that used to
leak (issue 11, finding 1), each result checked against a reference model of who may read what.

The reference (``Ref``) is a plain dict written here from the documented rules, not Docent's
access code: a user reads a document when the user exists, the document is not disabled, and
the user is an admin, or the document's own group override (when set) shares a group with the
user, or (no override) the collection's read groups do; every user is in ``everyone``. A
renamed file is the same document to its readers; an edited, re-uploaded or re-indexed one too.

The HTTP API is probed too (models, the search tool, chat completions with each user's key;
a removed user's key on every route). Real parts: the embedded Qdrant engine, the real embedding model (the session fixture), real
.docx files and one PDF, the real parser sandbox, extractive answers (``local_llm=none``).
The seed is printed; ``DOCENT_ADVERSARIAL_SEED`` replays another run.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from retrieval.models import Principal
from ui.usecases import Docent, Upload
from ui.usecases.errors import (
    AdminOnlyError,
    DocumentUnavailableError,
    NoLanguageModelError,
    UnknownUserError,
)

from .api_server import running_api
from .conftest import make_settings
from .minidocx import write_docx
from .minipdf import write_pdf

SEED = int(os.environ.get("DOCENT_ADVERSARIAL_SEED", "20261203"))
PROBES = 1000
ADMIN = Principal(user="root", groups=["admins"], is_admin=True)
GROUPS = ["staff", "board", "finance", "everyone"]
USERS = {"alice": {"staff"}, "bob": {"board"}, "carol": {"finance", "staff"}, "dave": set(),
         "erin": {"board", "finance"}, "frank": {"staff", "board"}}
COLLECTIONS = {"Everyone": {"everyone"}, "Staff": {"staff"}, "Finance": {"finance"}}
CHANGES = ["edit", "reupload", "groups", "override", "disable", "rename", "user", "reindex", "remove"]
FILLER = ("handbook policy budget travel meeting minutes report contract merger salary plan office "
          "review board staff schedule approval").split()


@dataclass
class RefDoc:
    collection: str
    path: str
    token: str
    upload: bool = False
    override: frozenset | None = None
    disabled: bool = False
    rev: int = 0


class Ref:
    """Who may read what, from the rules alone."""

    def __init__(self) -> None:
        self.users = {u: set(g) for u, g in USERS.items()}
        self.collections = {c: set(g) for c, g in COLLECTIONS.items()}
        self.docs: dict[str, RefDoc] = {}  # by path
        self.dead_tokens: set[str] = set()

    def may_read(self, user: str | None, doc: RefDoc) -> bool:
        if user is None:  # the admin
            return not doc.disabled
        if user not in self.users or doc.disabled:
            return False
        groups = self.users[user] | {"everyone"}
        allowed = doc.override if doc.override is not None else self.collections[doc.collection]
        return bool(groups & allowed)

    def readable(self, user: str | None) -> set[str]:
        return {p for p, d in self.docs.items() if self.may_read(user, d)}

    def visible_collections(self, user: str | None) -> set[str]:
        if user is None:
            return set(self.collections)
        groups = self.users[user] | {"everyone"}
        return {c for c, g in self.collections.items() if groups & g} | {
            d.collection for p, d in self.docs.items() if self.may_read(user, d)}


def _paragraphs(token: str, rev: int, rnd: random.Random) -> list[str]:
    return [f"{token} part {i} revision {rev}. " + " ".join(rnd.choice(FILLER) for _ in range(28)) + "."
            for i in range(3)]


class QueryCache:
    """The session's real embedder with questions' vectors remembered: probes repeat a few
    dozen questions, and embedding them again would only spend the time budget."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._queries: dict[str, object] = {}

    def embed_query(self, text: str):
        if text not in self._queries:
            self._queries[text] = self._embedder.embed_query(text)
        return self._queries[text]

    def __getattr__(self, name: str):
        return getattr(self._embedder, name)


class Suite:
    def __init__(self, tmp: Path, embedder, rnd: random.Random):
        self.rnd = rnd
        self.tmp = tmp
        settings = make_settings(tmp / "docent", local_llm="none", audit_include_text=True, questions_per_minute=0,
                                 chunk_tokens=48, chunk_overlap_tokens=8)
        self.app = Docent.from_settings(settings, embedder=QueryCache(embedder))
        self.ref = Ref()
        self.ids: dict[str, str] = {}  # collection name -> id
        self.counter = 0
        self.probes = 0
        self.passages: list = []  # passages found earlier, for preview probes
        self.pending = rnd.sample(CHANGES, len(CHANGES))
        self.stack = ExitStack()
        self.api = ""  # the API's base URL, over the same Docent
        self.keys: dict[str | None, str] = {}

    # --- set-up and state changes ----------------------------------------------------------
    def token(self) -> str:
        self.counter += 1
        return "zq" + "".join(self.rnd.choice("bcdfghjklmnpqrstvwxz") for _ in range(6)) + f"x{self.counter}"

    def share(self, collection: str) -> Path:
        return (self.tmp / "share" / collection).resolve()

    def setup(self) -> None:
        app = self.app
        for user, groups in USERS.items():
            app.add_user(ADMIN, user, f"{user}-password-1", "employee", sorted(groups))
        for name, read in COLLECTIONS.items():
            self.ids[name] = app.create_collection(ADMIN, name, sorted(read), ["staff"]).id
            for i in range(2):
                self.new_share_doc(name, f"doc{i}.docx")
        token = self.token()
        pdf = write_pdf(self.share("Everyone") / "pages.pdf", [f"{token} page one handbook.", f"{token} page two."])
        self.ref.docs[str(pdf)] = RefDoc("Everyone", str(pdf), token)
        for name in COLLECTIONS:
            self.ingest(name)
        self.upload("Staff", "memo.docx")
        for user in USERS:
            self.keys[user] = app.create_api_key(ADMIN, user, "suite")[1]
        self.keys[None] = app.create_api_key(ADMIN, ADMIN.user, "suite", list(ADMIN.groups))[1]
        self.api = self.stack.enter_context(running_api(app))

    def new_share_doc(self, collection: str, name: str) -> None:
        token = self.token()
        path = write_docx(self.share(collection) / name, _paragraphs(token, 0, self.rnd))
        self.ref.docs[str(path)] = RefDoc(collection, str(path), token)

    def ingest(self, collection: str) -> None:
        report = self.app.ingest_folder(ADMIN, collection, [self.share(collection)], prune=True)
        assert report.exit_code == 0, report.files

    def upload(self, collection: str, name: str) -> None:
        path = str(self.app.upload_dir(self.app.workspace.catalog.get(collection)) / name)
        doc = self.ref.docs.get(path) or RefDoc(collection, path, self.token(), upload=True)
        doc.rev += 1
        data = self.tmp / "up" / name
        write_docx(data, _paragraphs(doc.token, doc.rev, self.rnd))
        report = self.app.upload(ADMIN, collection, [Upload(name, data.read_bytes())])
        assert [f.status for f in report.files] == ["indexed"], report.files
        self.ref.docs[path] = doc

    def doc_id(self, doc: RefDoc) -> str:
        return next(d.document_id for d in self.app.list_documents(ADMIN, doc.collection) if d.path == doc.path)

    def pick_doc(self, docx_only: bool = False, share_only: bool = False) -> RefDoc:
        docs = [d for d in self.ref.docs.values() if (not docx_only or d.path.endswith(".docx"))
                and (not share_only or not d.upload)]
        return self.rnd.choice(sorted(docs, key=lambda d: d.path))

    def change(self) -> str:
        # Every kind early (in a seeded order), then at random.
        kind = self.pending.pop() if self.pending else self.rnd.choices(CHANGES, weights=[2, 1, 6, 7, 6, 2, 2, 1, 1])[0]
        app, ref, rnd = self.app, self.ref, self.rnd
        if kind == "edit":
            doc = self.pick_doc(docx_only=True, share_only=True)
            doc.rev += 1
            write_docx(Path(doc.path), _paragraphs(doc.token, doc.rev, rnd))
            self.ingest(doc.collection)
        elif kind == "reupload":
            self.upload(rnd.choice(["Staff", "Finance"]), rnd.choice(["memo.docx", "note.docx"]))
        elif kind == "groups":
            name = rnd.choice(sorted(ref.collections))
            read = set(rnd.sample(GROUPS, rnd.randint(0, 2)))
            app.set_collection_groups(ADMIN, name, sorted(read), ["staff"])
            ref.collections[name] = read
        elif kind == "override":
            doc = self.pick_doc()
            groups = None if rnd.random() < 0.3 else frozenset(rnd.sample(GROUPS, rnd.randint(0, 2)))
            app.set_document_access(ADMIN, doc.collection, self.doc_id(doc), None if groups is None else sorted(groups))
            doc.override = groups
        elif kind == "disable":
            doc = self.pick_doc()
            doc.disabled = not doc.disabled
            app.set_document_disabled(ADMIN, doc.collection, self.doc_id(doc), doc.disabled)
        elif kind == "rename":
            doc = self.pick_doc(docx_only=True, share_only=True)
            new = Path(doc.path).with_name(f"renamed{self.counter}.docx")
            self.counter += 1
            Path(doc.path).rename(new)
            del ref.docs[doc.path]
            doc.path = str(new)
            ref.docs[doc.path] = doc
            self.ingest(doc.collection)
        elif kind == "user":
            alive = sorted(ref.users)
            if len(alive) > 3:
                gone = rnd.choice(alive)
                app.remove_user(ADMIN, gone)
                del ref.users[gone]
            else:
                user = rnd.choice(alive)
                groups = set(rnd.sample(GROUPS[:3], rnd.randint(0, 2)))
                app.update_user(ADMIN, user, groups=sorted(groups))
                ref.users[user] = groups
        elif kind == "reindex":
            doc = self.pick_doc()
            assert app.reindex_document(ADMIN, doc.collection, self.doc_id(doc)).status == "indexed"
        elif kind == "remove" and len(ref.docs) > 6:
            doc = self.pick_doc(docx_only=True)
            app.remove_document(ADMIN, doc.collection, self.doc_id(doc))
            Path(doc.path).unlink(missing_ok=True)  # an uploaded original is gone already
            del ref.docs[doc.path]
            ref.dead_tokens.add(doc.token)
        return kind

    # --- probes ------------------------------------------------------------------------------
    def principal(self, user: str | None) -> Principal | None:
        if user is None:
            return ADMIN
        try:
            return self.app.principal(user)
        except UnknownUserError:
            assert user not in self.ref.users, f"{user} exists but is unknown"
            return None

    def key(self, collection_id: str, path: str) -> str:
        assert collection_id in self.ids.values()
        return path

    def no_foreign_text(self, user: str | None, text: str, where: str) -> None:
        readable = self.ref.readable(user)
        for path, doc in self.ref.docs.items():
            if path not in readable and doc.token in text and not any(
                    self.ref.docs[p].token == doc.token for p in readable):
                raise AssertionError(f"{where}: {user} sees text of {path} ({doc.token})")
        for token in self.ref.dead_tokens:
            assert token not in text, f"{where}: {user} sees text of a removed document ({token})"

    def probe(self, user: str | None) -> str:
        app, ref, rnd = self.app, self.ref, self.rnd
        p = self.principal(user)
        self.probes += 1
        if p is None:  # a removed user: their key is refused by every route
            headers = {"Authorization": f"Bearer {self.keys[user]}"}
            assert httpx.get(self.api + "/v1/models", headers=headers).status_code == 401
            r = httpx.post(self.api + "/v1/tools/search_documents", headers=headers, json={"query": "handbook"})
            assert r.status_code == 401
            return "unknown_user"
        readable = ref.readable(user)
        names = sorted(ref.collections)
        kind = rnd.choice(["sparse", "hybrid", "ask", "documents", "collections", "download", "summary",
                           "preview", "page_image", "read", "feedback", "api"])
        if kind == "sparse":
            doc = self.pick_doc()
            report = app.search(p, doc.token, names, mode="sparse", k=10)
            found = {self.key(x.collection, x.path) for x in report.passages}
            assert found == ({doc.path} & readable), (kind, user, doc.path, found)
        elif kind == "hybrid":
            report = app.search(p, f"handbook policy {self.pick_doc().token}", names, k=8, window=1)
            for x in report.passages:
                assert self.key(x.collection, x.path) in readable, (kind, user, x.path)
                self.no_foreign_text(user, x.text + x.context_before + x.context_after, kind)
            self.passages.extend(report.passages[:2])
            self.passages = self.passages[-40:]
        elif kind == "ask":
            question = f"What does the handbook say about {self.pick_doc().token}?"
            answer = [e for e in app.ask(p, names, question) if e.type == "final"][-1].answer
            for x in answer.passages:
                assert x.path in readable, (kind, user, x.path)
            for c in answer.citations:
                assert c.path in readable, (kind, user, c.path)
            self.no_foreign_text(user, answer.answer + "".join(x.text for x in answer.passages), kind)
            if answer.passages and rnd.random() < 0.3:
                app.record_feedback(p, question, answer, rnd.choice(["up", "down"]), "", names)
        elif kind == "documents":
            assert {d.path for d in app.documents(p, names)} == readable, (kind, user)
        elif kind == "collections":
            assert {v.rec.name for v in app.collections(p)} == ref.visible_collections(user), (kind, user)
        elif kind in ("download", "summary", "read", "page_image"):
            doc = self.pick_doc()
            cid, did = self.ids[doc.collection], self.doc_id(doc)
            self.read_one(kind, p, user, doc, cid, did, doc.path in readable)
        elif kind == "preview" and self.passages:
            x = rnd.choice(self.passages)
            if x.path in readable:
                assert app.preview(p, x) == x
            else:
                with pytest.raises(DocumentUnavailableError):
                    app.preview(p, x)
        elif kind == "api":
            self.api_probe(user, readable)
        elif kind == "feedback":
            if user is not None and not p.is_admin:
                with pytest.raises(AdminOnlyError):
                    app.export_feedback(p, self.tmp / "fb-refused")
            else:
                folder = self.tmp / f"fb-{self.probes}"
                app.export_feedback(p, folder)
                # Passage text leaves with its document (a question is the user's own words).
                exported = (folder / "corpus.jsonl").read_text(encoding="utf-8")
                for token in self.ref.dead_tokens:
                    assert token not in exported, (kind, token)
        return kind

    def api_probe(self, user: str | None, readable: set[str]) -> None:
        """The same rules through the HTTP API, with the user's key."""
        headers = {"Authorization": f"Bearer {self.keys[user]}"}
        visible = self.ref.visible_collections(user)
        sub = self.rnd.choice(["models", "search", "chat"])
        if sub == "models":
            got = {m["id"] for m in httpx.get(self.api + "/v1/models", headers=headers).json()["data"]}
            assert got == ({f"docent/{c}" for c in visible} | ({"docent"} if visible else set())), (user, got)
            return
        doc = self.pick_doc()
        if sub == "search":
            r = httpx.post(self.api + "/v1/tools/search_documents", headers=headers, timeout=60,
                           json={"query": f"handbook {doc.token}", "k": 10})
            texts = [x["text"] for x in r.json().get("data", [])] if r.status_code == 200 else []
            paths = {x["path"] for x in r.json().get("data", [])} if r.status_code == 200 else set()
        else:
            r = httpx.post(self.api + "/v1/chat/completions", headers=headers, timeout=60,
                           json={"model": "docent", "messages": [
                               {"role": "user", "content": f"What does the handbook say about {doc.token}?"}]})
            body = r.json() if r.status_code == 200 else {}
            texts = [body["choices"][0]["message"]["content"]] if body else []
            paths = {c["path"] for c in body.get("citations", [])}
        # No readable collection: not even the all-collections model exists for this key.
        assert r.status_code == (200 if visible else 404), (sub, user, r.status_code, r.text[:200])
        assert paths <= readable, (sub, user, paths - readable)
        self.no_foreign_text(user, "\n".join(texts), f"api_{sub}")

    def read_one(self, kind: str, p: Principal, user: str | None, doc: RefDoc, cid: str, did: str,
                 may: bool) -> None:
        app = self.app
        calls = {
            "download": lambda: app.download(p, cid, did),
            "summary": lambda: app.summarize(p, cid, did),
            "read": lambda: app.read_document(p, cid, did),
            "page_image": lambda: app.page_image(p, cid, did, 1),
        }
        if not may:
            with pytest.raises(DocumentUnavailableError):
                calls[kind]()
            return
        if kind == "download":
            assert app.download(p, cid, did).data == Path(doc.path).read_bytes()
        elif kind == "summary":
            assert doc.token in " ".join(s.text for s in app.summary_sections(p, cid, did))
            with pytest.raises(NoLanguageModelError):  # past the access check, no model to write it
                app.summarize(p, cid, did)
        elif kind == "read":
            assert doc.token in " ".join(c.text for c in app.read_document(p, cid, did))
        else:
            png = app.page_image(p, cid, did, 1)
            assert (png is None) if doc.path.endswith(".docx") else png.startswith(b"\x89PNG")


def test_random_probes_never_read_past_the_reference(tmp_path, embedder):
    print(f"adversarial access suite: seed {SEED} (DOCENT_ADVERSARIAL_SEED replays it)")
    rnd = random.Random(SEED)
    suite = Suite(tmp_path, embedder, rnd)
    try:
        suite.setup()
        kinds: dict[str, int] = {}
        changes: dict[str, int] = {}
        seconds: dict[str, float] = {}
        while suite.probes < PROBES:
            if rnd.random() < 0.08:
                started = time.perf_counter()
                kind = suite.change()
                changes[kind] = changes.get(kind, 0) + 1
                seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started
            # Now and then as a removed user; mostly as someone who is there.
            gone = sorted(set(USERS) - set(suite.ref.users))
            user = rnd.choice(gone) if gone and rnd.random() < 0.05 else rnd.choice([None, *sorted(suite.ref.users)])
            started = time.perf_counter()
            kind = suite.probe(user)
            kinds[kind] = kinds.get(kind, 0) + 1
            seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started
        print(f"probes {kinds}; state changes {changes}; seconds {({k: round(v, 1) for k, v in seconds.items()})}")
        assert suite.probes >= PROBES and set(changes) == set(CHANGES)
    finally:
        suite.stack.close()
        suite.app.close()
