"""No passage a user may not read is ever returned: randomized users, groups, collections,
document overrides and disabled documents, checked against the rules written out here
independently of retrieval/access.py (search results, merged passages and context windows)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import pytest

from ingest.beir import corpus_items
from retrieval.access import read_filter
from retrieval.catalog import EVERYONE
from retrieval.evaluation import CorpusRecord
from retrieval.models import Chunk, Principal
from retrieval.search import Searcher, may_read
from retrieval.store.base import Filter, Match
from tests.search_support import index_items, open_workspace

GROUPS = ["hr", "eng", "sales", "legal"]
COLLECTION_GROUPS = {"Open": [EVERYONE], "People": ["hr", "legal"], "Code": ["eng"], "Board": []}
WORDS = ("salary contract laptop budget merger audit holiday server release invoice customer hiring "
         "policy security roadmap pension travel office review bonus 薪资 合同 预算 审计 客户 安全").split()
TAG = re.compile(r"\bk\d+x\d+\b")
SEED = 20261123


@dataclass
class World:
    ws: object
    searcher: Searcher
    collections: dict  # name -> CollectionRecord
    override: dict = field(default_factory=dict)  # document_id -> groups | None
    disabled_docs: set = field(default_factory=set)
    disabled_chunks: set = field(default_factory=set)  # chunk ids
    chunks: dict = field(default_factory=dict)  # chunk id -> Chunk (as indexed)

    def may(self, p: Principal, c: Chunk) -> bool:
        """The rules, from what the test itself decided (not from the payload)."""
        if c.document_id in self.disabled_docs or c.id in self.disabled_chunks:
            return False
        if p.is_admin:
            return True
        mine = set(p.groups) | {EVERYONE}
        groups = self.override[c.document_id]
        if groups is None:
            name = next(n for n, r in self.collections.items() if r.id == c.collection)
            groups = COLLECTION_GROUPS[name]
        return bool(mine & set(groups))

    def allowed_ids(self, p: Principal, names=None) -> set[str]:
        ids = {self.collections[n].id for n in (names or self.collections)}
        return {i for i, c in self.chunks.items() if c.collection in ids and self.may(p, c)}

    def allowed_tags(self, p: Principal) -> set[str]:
        return {t for i in self.allowed_ids(p) for t in TAG.findall(self.chunks[i].text)}


PRINCIPALS = [
    Principal(user="root", is_admin=True),
    Principal(user="nobody"),
    Principal(user="hanna", groups=["hr"]),
    Principal(user="eric", groups=["eng"]),
    Principal(user="sam", groups=["sales", "legal"]),
    Principal(user="lea", groups=["legal"]),
    Principal(user="omni", groups=GROUPS),
    Principal(user="ghost", groups=["no-such-group"]),
]


def _document(rng: random.Random, n: int) -> CorpusRecord:
    sentences = [f"Note k{n}x{s} " + " ".join(rng.sample(WORDS, 5)) + "." for s in range(6)]
    return CorpusRecord(f"doc{n}", f"Memo {n}", " ".join(sentences))


@pytest.fixture(scope="module")
def world(tmp_path_factory, embedder):
    rng = random.Random(SEED)
    ws = open_workspace(tmp_path_factory.mktemp("acl"), embedder, chunk_tokens=48, chunk_overlap_tokens=20)
    w = World(ws, Searcher(ws.settings, ws.index, ws.embedder), {})
    n = 0
    for name, groups in COLLECTION_GROUPS.items():
        records = [_document(rng, n + i) for i in range(5)]
        n += 5
        rec = index_items(ws, name, corpus_items(records), read_groups=groups)
        w.collections[name] = rec
        for info in ws.index.list_documents(rec):
            roll = rng.random()
            groups_ = None if roll < 0.5 else [] if roll < 0.6 else rng.sample(GROUPS + [EVERYONE], rng.randint(1, 2))
            w.override[info.document_id] = groups_
            if groups_ is not None:
                ws.index.set_access(rec, info.document_id, groups_)
            if rng.random() < 0.12:
                ws.index.set_disabled(rec, info.document_id, True)
                w.disabled_docs.add(info.document_id)
        for chunk in ws.index.iter_chunks(rec):
            w.chunks[chunk.id] = chunk
        # One middle chunk of one document hidden on its own: neighbour windows must skip it.
        victim = next(c for c in sorted(w.chunks.values(), key=lambda c: (c.path, c.chunk_index))
                      if c.collection == rec.id and 0 < c.chunk_index < c.n_chunks - 1)
        ws.store.set_payload(ws.index.target(rec), Filter(must=(Match("document_id", (victim.document_id,)),
                                                                Match("chunk_index", (victim.chunk_index,)))),
                             {"disabled": True})
        w.disabled_chunks.add(victim.id)
    assert len(w.chunks) >= 40 and all(c.n_chunks >= 3 for c in w.chunks.values())
    yield w
    ws.close()


def test_the_world_is_not_trivial(world):
    # Every principal sees something and misses something, except the admin who misses only
    # what is disabled: otherwise the assertions below would prove little.
    total = len(world.chunks)
    for p in PRINCIPALS:
        visible = len(world.allowed_ids(p))
        assert 0 < visible < total, p.user
    assert len(world.allowed_ids(PRINCIPALS[0])) == total - len(
        {c.id for c in world.chunks.values() if c.document_id in world.disabled_docs} | world.disabled_chunks)


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.user)
def test_the_engine_filter_alone_returns_exactly_what_the_rules_allow(world, principal):
    # The Qdrant filter is checked without Searcher's second check (may_read) in the way.
    for name, rec in world.collections.items():
        physical = world.ws.index.target(rec)
        flt = read_filter(principal, rec)
        scrolled = {c.id for c in world.ws.store.scroll(physical, flt)}
        hits = world.ws.store.query(physical, mode="dense", dense=[0.05] * world.ws.embedder.dim, sparse=None,
                                    flt=flt, limit=1000)
        expected = world.allowed_ids(principal, [name])
        assert scrolled == expected, name
        assert {h.chunk.id for h in hits} == expected, name
        # Searcher's second line of defence states the same rules over the stored payload.
        stored = list(world.ws.store.scroll(physical))
        assert {c.id for c in stored if may_read(principal, rec, c)} == expected, name


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.user)
def test_a_search_deep_enough_returns_every_readable_chunk_and_nothing_else(world, principal):
    report = world.searcher.search("memo note", principal, list(world.collections), mode="dense", k=200)
    returned = {i for p in report.passages for i in p.chunk_ids}
    assert returned == world.allowed_ids(principal)


def test_randomized_searches_never_return_forbidden_text(world):
    rng = random.Random(SEED + 1)
    all_tags = sorted({t for c in world.chunks.values() for t in TAG.findall(c.text)})
    doc_ids = sorted(world.override)
    checked = 0
    for _ in range(90):
        principal = rng.choice(PRINCIPALS)
        names = rng.sample(list(world.collections), rng.randint(1, len(world.collections)))
        question = rng.choice([
            rng.choice(all_tags),  # often a tag the user may not see
            " ".join(rng.sample(WORDS, 3)),
            rng.choice(all_tags) + " " + rng.choice(WORDS),
        ])
        mode = rng.choice(["dense", "sparse", "hybrid"])
        k = rng.choice([1, 2, 5, 20, 200])
        window = rng.choice([0, 0, 1, 2])
        documents = rng.sample(doc_ids, rng.randint(1, 4)) if rng.random() < 0.3 else None
        report = world.searcher.search(question, principal, names, mode=mode, k=k, document_ids=documents,
                                       window=window)
        allowed = world.allowed_ids(principal, names)
        tags = world.allowed_tags(principal)
        for p in report.passages:
            assert set(p.chunk_ids) <= allowed, (principal.user, question, mode)
            assert documents is None or p.document_id in documents
            shown = TAG.findall(p.text + " " + p.context_before + " " + p.context_after)
            assert set(shown) <= tags, (principal.user, question, mode, window)
            checked += 1
    assert checked > 100


def test_a_neighbour_window_skips_a_chunk_the_user_may_not_read(world):
    admin = PRINCIPALS[0]
    hidden = world.chunks[sorted(world.disabled_chunks)[0]]
    before = next(c for c in world.chunks.values()
                  if c.document_id == hidden.document_id and c.chunk_index == hidden.chunk_index - 1)
    only_hidden = set(TAG.findall(hidden.text)) - {
        t for c in world.chunks.values() if c.document_id == hidden.document_id and c.id != hidden.id
        for t in TAG.findall(c.text)}
    assert only_hidden, "the hidden chunk must hold text no other chunk repeats"
    if before.document_id in world.disabled_docs:
        pytest.skip("the whole document is disabled in this seed")
    name = next(n for n, r in world.collections.items() if r.id == hidden.collection)
    report = world.searcher.search(TAG.findall(before.text)[0], admin, [name], mode="sparse", k=1, window=2,
                                   document_ids=[hidden.document_id])
    (p,) = report.passages
    assert hidden.id not in p.chunk_ids
    assert not set(TAG.findall(p.text + p.context_before + p.context_after)) & only_hidden


def test_an_override_widens_and_narrows_access_at_once(world):
    rec = world.collections["Board"]  # nobody but admins reads this collection
    doc = next(d for d, g in world.override.items() if g is None and d not in world.disabled_docs
               and any(c.document_id == d and c.collection == rec.id for c in world.chunks.values()))
    eric, hanna = PRINCIPALS[3], PRINCIPALS[2]

    def visible(p: Principal) -> bool:
        return bool(world.searcher.search("memo", p, ["Board"], mode="dense", k=50, document_ids=[doc]).passages)

    assert not visible(eric) and not visible(hanna)
    world.ws.index.set_access(rec, doc, ["eng"])
    try:
        assert visible(eric) and not visible(hanna)
        world.ws.index.set_access(rec, doc, [])
        assert not visible(eric)
    finally:
        world.ws.index.set_access(rec, doc, None)
    assert not visible(eric)
