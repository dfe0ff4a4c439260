"""Retrieval quality on BEIR-layout sets: loading, metrics, and a per-mode evaluation loop.

Metrics follow BEIR's definitions (pytrec_eval): nDCG with linear gains and log2 discount,
recall as the share of a query's relevant documents found in the top k, MRR of the first
relevant document within the top k. Documents are BEIR ids; a ranking that names one
document twice (two passages of it) counts it once, at its best rank.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

METRIC_KEYS = ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10", "p50_ms", "p95_ms")
ALL_MODES = ("dense", "sparse", "hybrid", "hybrid+rerank")


class BeirFormatError(ValueError):
    """A BEIR file is missing or malformed (names the file and line)."""


@dataclass(frozen=True)
class CorpusRecord:
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirSet:
    root: Path
    corpus_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str

    def corpus(self) -> Iterable[CorpusRecord]:
        return load_corpus(self.corpus_path)


# --- loading ---------------------------------------------------------------------------
def _jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    if not path.is_file():
        raise BeirFormatError(f"{path}: file not found")
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise BeirFormatError(f"{path}:{n}: not JSON: {exc}") from exc
            if not isinstance(obj, dict) or "_id" not in obj:
                raise BeirFormatError(f"{path}:{n}: expected an object with an '_id'")
            yield n, obj


def load_corpus(path: Path) -> Iterable[CorpusRecord]:
    for n, obj in _jsonl(path):
        title, text = obj.get("title") or "", obj.get("text") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise BeirFormatError(f"{path}:{n}: 'title' and 'text' must be strings")
        yield CorpusRecord(str(obj["_id"]), title, text)


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for n, obj in _jsonl(path):
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BeirFormatError(f"{path}:{n}: query {obj['_id']!r} has no text")
        queries[str(obj["_id"])] = text
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id \\t corpus-id \\t score`` rows; an optional header row; LF or CRLF."""
    if not path.is_file():
        raise BeirFormatError(f"{path}: file not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != 3:
                raise BeirFormatError(f"{path}:{n}: expected 3 tab-separated columns, got {len(cols)}")
            qid, did, score = (c.strip() for c in cols)
            try:
                value = int(float(score))
            except ValueError:
                if n == 1:
                    continue  # the header row
                raise BeirFormatError(f"{path}:{n}: score {score!r} is not a number") from None
            qrels.setdefault(qid, {})[did] = value
    return qrels


def load_beir(root: Path, split: str = "test") -> BeirSet:
    root = Path(root)
    if not root.is_dir():
        raise BeirFormatError(f"{root}: not a folder (expected corpus.jsonl, queries.jsonl, qrels/{split}.tsv)")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    queries = load_queries(root / "queries.jsonl")
    missing = sorted(q for q in qrels if q not in queries)
    if missing:
        raise BeirFormatError(f"{root}: {len(missing)} judged queries are not in queries.jsonl (e.g. {missing[0]!r})")
    judged = {q: queries[q] for q in qrels if any(v > 0 for v in qrels[q].values())}
    return BeirSet(root, root / "corpus.jsonl", judged, qrels, split)


# --- metrics ----------------------------------------------------------------------------
def dedupe(ranked: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    return dcg / idcg


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class ModeResult:
    mode: str
    rankings: dict[str, list[str]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

    def metrics(self, qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
        return score_rankings(self.rankings, qrels, self.latencies_ms)


def score_rankings(rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]],
                   latencies_ms: Sequence[float] = ()) -> dict[str, float]:
    """Mean metrics over the judged queries in ``rankings`` (a query with no ranking scores 0)."""
    qids = [q for q in qrels if any(v > 0 for v in qrels[q].values())]
    if not qids:
        raise ValueError("no judged query with a relevant document")
    sums = dict.fromkeys(METRIC_KEYS[:5], 0.0)
    for q in qids:
        ranked = dedupe(rankings.get(q, []))
        rels = qrels[q]
        sums["ndcg@10"] += ndcg_at_k(ranked, rels, 10)
        sums["recall@5"] += recall_at_k(ranked, rels, 5)
        sums["recall@10"] += recall_at_k(ranked, rels, 10)
        sums["recall@100"] += recall_at_k(ranked, rels, 100)
        sums["mrr@10"] += mrr_at_k(ranked, rels, 10)
    out = {key: round(v / len(qids), 4) for key, v in sums.items()}
    out["p50_ms"] = round(percentile(latencies_ms, 50), 1) if latencies_ms else float("nan")
    out["p95_ms"] = round(percentile(latencies_ms, 95), 1) if latencies_ms else float("nan")
    return out


# A search under evaluation: (query text, mode) -> (BEIR doc ids best first, stages that ran).
RankFn = Callable[[str, str], tuple[list[str], list[str]]]


def run_mode(rank: RankFn, queries: Mapping[str, str], mode: str, warmup: int = 3,
             progress: Callable[[int, int], None] | None = None) -> ModeResult:
    """Rank every query in ``mode``, timing each call (the first ``warmup`` calls run twice
    and are timed the second time, so one-off loading does not land in p95)."""
    result = ModeResult(mode)
    items = sorted(queries.items())
    for i, (qid, text) in enumerate(items):
        if i < warmup:
            rank(text, mode)
        t0 = time.perf_counter()
        ranked, stages = rank(text, mode)
        result.latencies_ms.append((time.perf_counter() - t0) * 1000)
        result.rankings[qid] = ranked
        if stages and not result.stages:
            result.stages = list(stages)
        if progress:
            progress(i + 1, len(items))
    return result


def evaluate(rank: RankFn, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
             modes: Sequence[str], progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """``{mode: {metric: value}}`` for each mode, in the order given."""
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {', '.join(unknown)}: choose from {', '.join(ALL_MODES)}")
    report: dict[str, dict[str, float]] = {}
    for mode in modes:
        cb = (lambda done, total, m=mode: progress(m, done, total)) if progress else None
        report[mode] = run_mode(rank, queries, mode, progress=cb).metrics(qrels)
    return report
