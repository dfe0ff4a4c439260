"""Search latency and index footprint on the embedded store at 10k and 100k chunks.

    PYTHONPATH=. .venv/bin/python benchmarks/retrieval.py [--sizes 10000 100000] [--queries 100] [--json]

What is measured is ``Searcher.search`` as users call it — query embedding with the real
model, keyword encoding, one Qdrant Query API call with a non-admin access filter, merging —
p50/p95 per mode (dense, sparse, hybrid, and hybrid+rerank only when DOCENT_RERANKER_PATH is
set). The corpus is synthetic: text drawn from a Zipf vocabulary (a share of it Chinese) with
real keyword vectors, and random unit vectors in place of passage embeddings, since embedding
100k passages on 2 cores takes hours and does not change what a query costs. Timing starts
after the store's segments are merged (``EdgeStore.optimize``), the steady state of an index
that is queried long after it was written. Index size is the store folder on disk; RAM is the
resident-set growth of opening the store and querying it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the package it measures: run as a script, its own folder comes first
# on sys.path and would shadow the real ``retrieval``; put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402

from benchmarks.record import save  # noqa: E402
from retrieval import sparse  # noqa: E402
from retrieval.evaluation import percentile  # noqa: E402
from retrieval.models import Chunk, Principal, chunk_id_for, document_id_for  # noqa: E402
from retrieval.rerank import Reranker  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.workspace import Workspace  # noqa: E402

CHUNKS_PER_DOC = 20
WORDS_PER_CHUNK = 170  # ~256 model tokens, the default chunk size
GROUPS = ["hr", "legal", "eng", "sales"]
USER = Principal(user="bench", groups=["hr", "eng"])
_SYLLABLES = "ka lo mi ne su ta ri po ve da shi no ra te gu ma be fi zo lu".split()
_HANZI = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class SyntheticText:
    """English-like words with Zipf frequencies; every fifth document is Chinese."""

    def __init__(self, seed: int = 7, vocab: int = 20_000):
        self.rng = random.Random(seed)
        self.words = vocabulary(vocab, self.rng)
        ranks = np.arange(1, vocab + 1, dtype=np.float64)
        self.cdf = np.cumsum(1 / ranks) / (1 / ranks).sum()
        self.np_rng = np.random.default_rng(seed)

    def english(self, n: int) -> str:
        idx = np.minimum(np.searchsorted(self.cdf, self.np_rng.random(n)), len(self.words) - 1)
        return " ".join(self.words[i] for i in idx) + "."

    def chinese(self, n: int) -> str:
        return "".join(self.rng.choice(_HANZI) for _ in range(n)) + "。"

    def query(self, chinese: bool) -> str:
        if chinese:
            return self.chinese(self.rng.randint(8, 16))
        # Mid-frequency words: queries name things that some, not all, passages mention.
        return " ".join(self.words[self.rng.randint(20, 3000)] for _ in range(self.rng.randint(5, 10))) + "?"


def build(ws: Workspace, n_chunks: int, text: SyntheticText, dim: int, model_id: str) -> dict:
    """One collection of ``n_chunks`` synthetic chunks; a third of the documents override access."""
    rec = ws.index.ensure(ws.catalog.create_collection("Bench", read_groups=["hr", "legal"]), model_id, dim)
    target = ws.index.target(rec)
    rng = np.random.default_rng(11)
    started = time.perf_counter()
    upsert_s = 0.0
    batch = 2_000
    for lo in range(0, n_chunks, batch):
        chunks: list[Chunk] = []
        for i in range(lo, min(lo + batch, n_chunks)):
            doc, idx = divmod(i, CHUNKS_PER_DOC)
            body = text.chinese(300) if doc % 5 == 4 else text.english(WORDS_PER_CHUNK)
            doc_id = document_id_for(rec.id, f"/share/doc{doc}.pdf")
            chunks.append(Chunk(
                id=chunk_id_for(doc_id, "v1", idx), document_id=doc_id, collection=rec.id,
                path=f"/share/doc{doc}.pdf", title=f"Document {doc}", text=body, chunk_index=idx,
                n_chunks=CHUNKS_PER_DOC, start=idx * 1000, end=idx * 1000 + len(body), page=idx // 2 + 1,
                content_hash=f"{i:064x}", file_hash="v1", pages=CHUNKS_PER_DOC // 2,
                access_groups=[None, ["sales"], ["eng", "legal"]][doc % 3],
            ))
        dense = rng.standard_normal((len(chunks), dim)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        sparse_vecs = [sparse.encode_document(f"{c.title}\n{c.text}") for c in chunks]
        t0 = time.perf_counter()
        ws.store.upsert(target, chunks, dense, sparse_vecs)
        upsert_s += time.perf_counter() - t0
    return {"build_s": round(time.perf_counter() - started, 1), "upsert_s": round(upsert_s, 1),
            "upsert_points_per_s": round(n_chunks / max(upsert_s, 1e-9))}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def folder_mb(path: Path) -> tuple[float, float]:
    """(allocated, apparent) MiB: the engine preallocates sparse files, so both are told."""
    files = [p.stat() for p in path.rglob("*") if p.is_file()]
    return (round(sum(f.st_blocks * 512 for f in files) / 2**20, 1), round(sum(f.st_size for f in files) / 2**20, 1))


def measure(searcher: Searcher, queries: list[str], mode: str, k: int) -> dict:
    for q in queries[:5]:  # warm-up: first calls load code paths and caches
        searcher.search(q, USER, ["Bench"], mode=mode, k=k)
    times, found = [], 0
    for q in queries:
        t0 = time.perf_counter()
        report = searcher.search(q, USER, ["Bench"], mode=mode, k=k)
        times.append((time.perf_counter() - t0) * 1000)
        found += len(report.passages)
    return {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
            "mean_passages": round(found / len(queries), 1)}


def build_store(data_dir: str, n_chunks: int, dim: int, model_id: str) -> dict:
    """In its own process, as the batch job writes while the UI process reads: the writer's
    engine threads and heap do not linger in the process whose queries are timed."""
    s = Settings(data_dir=Path(data_dir), qdrant_url=None, qdrant_embedded_engine="edge")
    with Workspace(s) as ws:
        built = build(ws, n_chunks, SyntheticText(), dim, model_id)
        # Steady state, as an index queried long after it was written: segments merged, so the
        # engine's background optimiser does not compete with the timed queries for 2 cores.
        optimize = getattr(ws.store, "optimize", None)
        if optimize is not None:
            t0 = time.perf_counter()
            optimize(ws.index.target(ws.catalog.get("Bench")))
            built["optimize_s"] = round(time.perf_counter() - t0, 1)
    return built


def run_size(settings: Settings, embedder, reranker, n_chunks: int, n_queries: int, k: int) -> dict:
    text = SyntheticText()  # same vocabulary as the corpus the child process writes
    queries = [text.query(chinese=i % 4 == 3) for i in range(n_queries)]
    root = Path(tempfile.mkdtemp(prefix=f"docent-bench-{n_chunks}-"))
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            built = pool.apply(build_store, (str(root), n_chunks, embedder.dim, embedder.model_id))
        s = settings.model_copy(update={"data_dir": root, "qdrant_url": None, "qdrant_embedded_engine": "edge"})
        rss_before = rss_mb()
        with Workspace(s, embedder=embedder) as ws:
            searcher = Searcher(s, ws.index, embedder, reranker)
            modes = ["dense", "sparse", "hybrid"] + (["hybrid+rerank"] if reranker else [])
            result = {mode: measure(searcher, queries, mode, k) for mode in modes}
            if not reranker:
                result["hybrid+rerank"] = "not measured: no cross-encoder configured (DOCENT_RERANKER_PATH)"
            result["store_ram_mb"] = round(rss_mb() - rss_before, 1)
            result["chunks"] = ws.index.count(ws.catalog.get("Bench"))
        result["index_disk_mb"], result["index_apparent_mb"] = folder_mb(s.index_dir)
        result.update(built)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def query_embedding_ms(embedder, n: int = 50) -> dict:
    text = SyntheticText()
    qs = [text.query(chinese=i % 4 == 3) for i in range(n)]
    for q in qs[:5]:
        embedder.embed_query(q)
    times = []
    for q in qs:
        t0 = time.perf_counter()
        embedder.embed_query(q)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from retrieval.embeddings import Embedder

    settings = Settings()
    embedder = Embedder.from_settings(settings)
    embedder.embed_query("warm up")
    reranker = Reranker.from_settings(settings)
    rss_model = rss_mb()
    out: dict = {
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"prefetch_limit": settings.prefetch_limit, "dense_weight": settings.dense_weight,
                     "sparse_weight": settings.sparse_weight, "k": args.k, "model": embedder.model_id},
        "process_rss_with_model_mb": round(rss_model, 1),
        "query_embedding": query_embedding_ms(embedder),
    }
    for n in args.sizes:
        out[str(n)] = run_size(settings, embedder, reranker, n, args.queries, args.k)
    out["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    saved = save("retrieval", out)
    print(f"saved {saved}", file=sys.stderr)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return
    print(json.dumps({k: v for k, v in out.items() if not k.isdigit()}, indent=1))
    for n in args.sizes:
        r = out[str(n)]
        print(f"\n{n} chunks: disk {r['index_disk_mb']} MB, store RAM +{r['store_ram_mb']} MB, "
              f"upsert {r['upsert_points_per_s']} points/s")
        for mode in ("dense", "sparse", "hybrid", "hybrid+rerank"):
            m = r[mode]
            print(f"  {mode:<14} " + (f"p50 {m['p50_ms']:>7} ms  p95 {m['p95_ms']:>7} ms" if isinstance(m, dict) else m))


if __name__ == "__main__":
    main()
