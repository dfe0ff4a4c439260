"""The synthetic corpus and helpers the store tests share: 3 documents x 4 chunks, dim-8 vectors,
sparse vectors with a common term, a per-document term and a per-chunk term. Orderings the
tests expect are computed here in plain Python, never copied from an engine."""

from __future__ import annotations

import math
import random
from pathlib import Path

from qdrant_client import QdrantClient

from retrieval.models import Chunk, chunk_id_for, document_id_for
from retrieval.settings import Settings
from retrieval.store.base import Match, SparseVec, VectorStore
from retrieval.store.client import QdrantClientStore
from retrieval.store.edge import EdgeStore

REPO = Path(__file__).resolve().parents[1]
DIM = 8
COLL = "docent_test_v1"
BACKENDS = ["edge", "local"]

DOCS = {"alpha": None, "beta": ["hr"], "gamma": ["hr", "legal"]}
COMMON_TERM = 1


def doc_term(d: int) -> int:
    return 100 + d


def unique_term(j: int) -> int:
    return 1000 + j


def make_corpus() -> tuple[list[Chunk], list[list[float]], list[SparseVec]]:
    rng = random.Random(7)
    chunks, dense, sparse = [], [], []
    for d, (doc, groups) in enumerate(DOCS.items()):
        document_id = document_id_for("handbook", f"{doc}.pdf")
        for i in range(4):
            j = len(chunks)
            chunks.append(
                Chunk(
                    id=chunk_id_for(document_id, f"hash-{doc}", i),
                    document_id=document_id,
                    collection="handbook",
                    path=f"{doc}.pdf",
                    title=doc.title(),
                    text=f"{doc} passage {i}",
                    chunk_index=i,
                    n_chunks=4,
                    start=i * 100,
                    end=i * 100 + 99,
                    page=i + 1,
                    heading_path=["Intro", doc] if i % 2 else [],
                    kind="table" if i == 3 else "text",
                    content_hash=f"c{j}",
                    file_hash=f"hash-{doc}",
                    access_groups=groups,
                    disabled=(doc == "gamma" and i == 3),
                )
            )
            dense.append([rng.uniform(-1, 1) for _ in range(DIM)])
            sparse.append(
                SparseVec(
                    (COMMON_TERM, doc_term(d), unique_term(j)),
                    (rng.uniform(0.5, 2), rng.uniform(0.5, 2), rng.uniform(0.5, 2)),
                )
            )
    return chunks, dense, sparse


CHUNKS, DENSE, SPARSE = make_corpus()
IDS = [c.id for c in CHUNKS]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def dense_order(q: list[float], allowed: set[str] | None = None) -> list[str]:
    scored = [(cosine(q, v), c.id) for c, v in zip(CHUNKS, DENSE) if allowed is None or c.id in allowed]
    return [i for _, i in sorted(scored, reverse=True)]


def open_backend(kind: str, folder: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(folder / "edge")
    return QdrantClientStore(QdrantClient(path=str(folder / "local")))


def ids_of(chunks) -> list[str]:
    return [c.id for c in chunks]


def by_doc(doc: str) -> Match:
    return Match("document_id", (document_id_for("handbook", f"{doc}.pdf"),))


def docs_of(ids) -> set[str]:
    return {CHUNKS[IDS.index(i)].path.removesuffix(".pdf") for i in ids}


def embedded_settings(data_dir: Path, engine: str) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, qdrant_url=None, qdrant_embedded_engine=engine)
