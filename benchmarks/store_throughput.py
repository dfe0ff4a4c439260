"""Upsert rate and hybrid query latency of the index back-ends (edge, qdrant-client local mode).

    .venv/bin/python benchmarks/store_throughput.py --points 10000 --backend edge local

Synthetic data: 384-d random unit vectors (multilingual-e5-small's size), ~40-term sparse
vectors drawn from a Zipf-like 30k vocabulary, three access groups. Figures go to stdout as JSON
and to a run record (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path and its retrieval.py would shadow the
# package: the repository root goes there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from qdrant_client import QdrantClient  # noqa: E402

from benchmarks.record import save  # noqa: E402
from retrieval.models import Chunk  # noqa: E402
from retrieval.store.base import Filter, Match, SparseVec, VectorStore  # noqa: E402
from retrieval.store.client import QdrantClientStore  # noqa: E402
from retrieval.store.edge import EdgeStore  # noqa: E402

DIM, VOCAB, TERMS = 384, 30_000, 40


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIM)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def sparse(rng: random.Random, terms: int) -> SparseVec:
    idx = sorted({min(int(rng.paretovariate(0.8)), VOCAB) for _ in range(terms)})
    return SparseVec(tuple(idx), tuple(rng.uniform(0.3, 2.0) for _ in idx))


def corpus(n: int, seed: int = 1):
    rng = random.Random(seed)
    chunks = [
        Chunk(
            id=f"{i:08x}-0000-4000-8000-{i:012x}", document_id=f"doc{i // 20}", collection="bench",
            path=f"doc{i // 20}.pdf", title="t", text="x" * 600, chunk_index=i % 20, n_chunks=20,
            start=0, end=600, page=1, content_hash="c", file_hash="f",
            access_groups=[["hr"], ["legal"], None][i % 3],
        )
        for i in range(n)
    ]
    return chunks, [unit(rng) for _ in range(n)], [sparse(rng, TERMS) for _ in range(n)]


ACCESS = Filter(
    must=(Filter(should=(Filter(must_not=(Match("has_override", (True,)),)),
                         Filter(must=(Match("has_override", (True,)), Match("access_groups", ("hr",)))))),),
    must_not=(Match("disabled", (True,)),),
)


def run(kind: str, n: int, queries: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    store: VectorStore = EdgeStore(folder) if kind == "edge" else QdrantClientStore(QdrantClient(path=str(folder)))
    chunks, dense, sp = corpus(n)
    store.ensure_collection("bench", DIM)
    t = time.perf_counter()
    for s in range(0, n, 512):
        store.upsert("bench", chunks[s:s + 512], dense[s:s + 512], sp[s:s + 512])
    upsert_s = time.perf_counter() - t
    rng = random.Random(2)
    out = {"backend": kind, "points": n, "upsert_points_per_s": round(n / upsert_s)}
    for label, flt in (("hybrid", None), ("hybrid+access_filter", ACCESS)):
        times = []
        for _ in range(queries):
            q, qs = unit(rng), sparse(rng, 6)
            t = time.perf_counter()
            store.query("bench", mode="hybrid", dense=q, sparse=qs, flt=flt, limit=10)
            times.append((time.perf_counter() - t) * 1000)
        out[f"{label}_p50_ms"] = round(statistics.median(times), 2)
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--backend", nargs="+", default=["edge", "local"], choices=["edge", "local"])
    args = ap.parse_args()
    results = []
    for kind in args.backend:
        results.append(run(kind, args.points, args.queries))
        print(json.dumps(results[-1]), flush=True)
    print(f"saved {save('store-throughput', {'points': args.points, 'backends': results})}", file=sys.stderr)


if __name__ == "__main__":
    main()
