"""Document routing: which documents a question is about, before which passages answer it.

Among many filings of several companies and years, the page a question needs loses to the same
kind of page in a neighbouring filing ("FY2018 capital expenditure for 3M" reads like every
cash-flow table). The question usually names its document: a company, a year, a form. So each
document gets a small card: its name (file stem, title, the identity stored with contextual
chunks) and its opening (the cover page: issuer, ticker, period), and the question is matched
against the cards with an IDF over the cards, so only words that tell documents apart count:
"3M" and "2018" do, "balance sheet" does not. The search then runs once more inside the best
few documents and the two rankings are fused; a question that names no document is not routed.

Written here rather than taken from a library: it is twenty lines of scoring over Docent's own
chunk payloads, and its tokenisation must match ``retrieval.sparse`` (CJK bigrams) while also
splitting "FY2018" into "fy" + "2018" and joining "Best Buy" into "bestbuy" (file names drop the
space).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable, Sequence

from retrieval.models import Chunk
from retrieval.sparse import STOPWORDS, cjk_terms, is_cjk_run, raw_runs
from retrieval.store.base import Filter, Match, VectorStore

# The first chunks of a document hold its cover page (issuer, form, period) or its title block.
CARD_CHUNKS = (0, 1)
_NAME_WEIGHT = 2.0  # a word of the document's name counts twice a word of its opening
_CACHE_SIZE = 64
_SPLIT_DIGITS = re.compile(r"\d+|[^\d]+")


def identity_terms(text: str) -> set[str]:
    """Terms that can name a document: words, unstemmed, stop words dropped, also split at
    letter/digit boundaries ("fy2018" -> "fy2018", "fy", "2018"); two adjacent words joined as
    well ("best buy" -> "bestbuy") because file names drop spaces; CJK runs as in the keyword index."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: set[str] = set()
    words: list[str] = []
    for run in raw_runs(text):
        if is_cjk_run(run):
            terms.update(cjk_terms(run))
            words = []
            continue
        if run in STOPWORDS:
            words = []
            continue
        terms.add(run)  # "3m", "10k" and "q2" name things whole
        terms.update(p for p in _SPLIT_DIGITS.findall(run) if p not in STOPWORDS)
        if run.isalpha():
            if words:
                terms.add(words[-1] + run)
            words = [run]
        else:
            words = []
    return terms


@dataclass(frozen=True)
class DocumentCard:
    document_id: str
    name: frozenset[str]
    opening: frozenset[str]


def card_of(chunks: Sequence[Chunk]) -> DocumentCard:
    """One document's card from its first chunks (``CARD_CHUNKS``), in any order."""
    first = min(chunks, key=lambda c: c.chunk_index)
    stem = "" if "://" in first.path else PurePath(first.path).stem
    name = identity_terms(" ".join([stem.replace("_", " "), stem, first.title, first.context.split(" > ")[0]]))
    opening = identity_terms(" ".join(c.text for c in sorted(chunks, key=lambda c: c.chunk_index)))
    return DocumentCard(first.document_id, frozenset(name), frozenset(opening - name))


@dataclass(frozen=True)
class Route:
    document_ids: tuple[str, ...]  # best first
    scores: tuple[float, ...]


def route(question: str, cards: Sequence[DocumentCard], top: int, min_score: float,
          keep_ratio: float = 0.6) -> Route | None:
    """The up to ``top`` documents the question names best, or None when none is named clearly
    (best score under ``min_score``). Documents within ``keep_ratio`` of the best are kept, so a
    question that names one filing routes to it alone and one that names a company routes to its
    filings."""
    if not cards:
        return None
    q = identity_terms(question)
    n = len(cards)
    df: dict[str, int] = {}
    for card in cards:
        for t in (card.name | card.opening) & q:
            df[t] = df.get(t, 0) + 1
    # BM25's IDF: a term on every card scores ~0, one on a single card of 34 scores ~3.5.
    idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    scored = sorted(
        ((sum(idf[t] * (_NAME_WEIGHT if t in card.name else 1.0) for t in (card.name | card.opening) & q), i)
         for i, card in enumerate(cards)),
        key=lambda si: (-si[0], si[1]),
    )
    best = scored[0][0]
    if best < min_score:
        return None
    kept = [(s, i) for s, i in scored[:top] if s >= keep_ratio * best]
    return Route(tuple(cards[i].document_id for _, i in kept), tuple(round(s, 3) for s, _ in kept))


class CardCache:
    """Cards per (collection, reader filter), rebuilt when the collection's point count changes.

    Access is not decided here: the routed search runs under the same read filter as any other,
    and a card of a document re-ingested since it was cached still names the same document id."""

    def __init__(self, store: VectorStore, size: int = _CACHE_SIZE):
        self.store = store
        self.size = size
        self._cards: OrderedDict[tuple, list[DocumentCard]] = OrderedDict()
        self._lock = threading.Lock()  # one Searcher serves the API's and the app's threads

    def cards(self, physical: str, flt: Filter) -> list[DocumentCard]:
        key = (physical, flt, self.store.count(physical))
        with self._lock:
            if key in self._cards:
                self._cards.move_to_end(key)
                return self._cards[key]
        cards = build_cards(self.store.scroll(physical, Filter(must=(Match("chunk_index", CARD_CHUNKS),)).and_(flt)))
        with self._lock:
            self._cards[key] = cards
            while len(self._cards) > self.size:
                self._cards.popitem(last=False)
        return cards


def build_cards(chunks: Iterable[Chunk]) -> list[DocumentCard]:
    """One card per document; while a re-index holds two versions, the newer one's."""
    by_version: dict[tuple[str, str], list[Chunk]] = {}
    for c in chunks:
        by_version.setdefault((c.document_id, c.file_hash), []).append(c)
    newest: dict[str, list[Chunk]] = {}
    for group in by_version.values():
        doc = group[0].document_id
        if doc not in newest or group[0].indexed_at > newest[doc][0].indexed_at:
            newest[doc] = group
    return [card_of(group) for group in newest.values()]
