"""Prometheus metrics of one Docent process, meant to be read beside vLLM's own ``/metrics``.

Names and units follow vLLM where the quantity is the same, so one dashboard can put them side
by side: ``docent_llm_time_to_first_token_seconds`` (what Docent waited, network and queue
included) next to ``vllm:time_to_first_token_seconds`` (what the server measured), with the
same buckets and the same ``model_name`` label; ``docent_llm_prompt_tokens_total`` /
``docent_llm_generation_tokens_total`` next to ``vllm:prompt_tokens_total`` /
``vllm:generation_tokens_total``.

Ingestion is counted from the catalog's run history (every run records itself there, whether
cron's CLI, a partitioned worker or an upload in the UI), so the process that serves the
metrics reports all of them, and a restart loses no count. Index sizes are read from the index
on each scrape.

Prometheus exposes one registry per process, so :func:`process_metrics` keeps one
:class:`Metrics` per process: the single piece of state here besides the settings. Tests make
their own ``Metrics()``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from retrieval.catalog import Catalog
    from retrieval.index import Index
    from retrieval.models import SearchReport
    from retrieval.settings import Settings

log = logging.getLogger(__name__)

# vLLM's own buckets (vllm/v1/metrics/loggers.py), so quantiles of both line up.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)
# Retrieval is milliseconds on the embedded engine and tens of ms on a server.
RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


def error_kind(exc: BaseException) -> str:
    """A bounded label for an exception: its class name in snake case, without ``Error``
    (``LLMTimeoutError`` -> ``llm_timeout``, ``IndexBusyError`` -> ``index_busy``)."""
    name = type(exc).__name__
    name = re.sub(r"(Error|Exception)$", "", name) or name
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return name or "unknown"


class Metrics:
    """Every metric Docent's own code records. Thread-safe (prometheus_client is)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # --- questions (the assistant) ----------------------------------------------------
        self.questions = Counter(
            "docent_questions", "Questions asked, by outcome: generated, extractive, refused (documents "
            "lack the answer), blocked_input, blocked_output, rate_limited, invalid, error, abandoned.",
            ["outcome"], registry=r)
        self.answer_ttft = Histogram(
            "docent_answer_time_to_first_token_seconds",
            "From the question to the first answer text shown (rewrite + retrieval + LLM).",
            buckets=TTFT_BUCKETS, registry=r)
        self.answer_latency = Histogram(
            "docent_answer_latency_seconds", "From the question to the final, checked answer.",
            buckets=E2E_BUCKETS, registry=r)
        # --- retrieval ----------------------------------------------------------------------
        self.searches = Counter("docent_searches", "Searches, by mode and outcome (ok, error).",
                                ["mode", "outcome"], registry=r)
        self.retrieval_latency = Histogram(
            "docent_retrieval_latency_seconds", "Search latency: query embedding, Qdrant query, merge.",
            ["mode"], buckets=RETRIEVAL_BUCKETS, registry=r)
        # --- the language model, as Docent sees it ------------------------------------------
        self.llm_requests = Counter("docent_llm_requests", "Requests to the LLM server, by outcome (ok, error).",
                                    ["model_name", "outcome"], registry=r)
        self.llm_ttft = Histogram(
            "docent_llm_time_to_first_token_seconds",
            "From sending a request to its first token (compare vllm:time_to_first_token_seconds).",
            ["model_name"], buckets=TTFT_BUCKETS, registry=r)
        self.llm_latency = Histogram(
            "docent_llm_request_latency_seconds",
            "Whole LLM request as Docent waited for it (compare vllm:e2e_request_latency_seconds).",
            ["model_name"], buckets=E2E_BUCKETS, registry=r)
        self.llm_prompt_tokens = Counter(
            "docent_llm_prompt_tokens", "Prompt tokens sent, counted with the served tokenizer "
            "(compare vllm:prompt_tokens_total).", ["model_name"], registry=r)
        self.llm_generation_tokens = Counter(
            "docent_llm_generation_tokens", "Tokens received, counted with the served tokenizer "
            "(compare vllm:generation_tokens_total).", ["model_name"], registry=r)
        # --- failures and refusals ----------------------------------------------------------
        self.errors = Counter("docent_errors", "Errors by kind (exception class, e.g. llm_timeout, index_busy).",
                              ["kind"], registry=r)
        self.safety_refusals = Counter(
            "docent_safety_refusals", "Questions or answers refused by the content-safety policy.",
            ["direction", "rule"], registry=r)
        self.rate_limited = Counter("docent_rate_limited", "Questions refused by the per-user rate limit.",
                                    registry=r)
        self._collectors: list[Collector] = []

    # --- recording helpers ------------------------------------------------------------------
    def observe_search(self, mode: str, seconds: float) -> None:
        self.searches.labels(mode, "ok").inc()
        self.retrieval_latency.labels(mode).observe(seconds)

    def observe_error(self, exc: BaseException) -> str:
        kind = error_kind(exc)
        self.errors.labels(kind).inc()
        return kind

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._collectors.append(collector)

    def render(self) -> str:
        """The exposition text (what ``/metrics`` serves)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")


_process_metrics: Metrics | None = None
_process_lock = threading.Lock()


def process_metrics() -> Metrics:
    """This process's metrics (created on first use)."""
    global _process_metrics
    with _process_lock:
        if _process_metrics is None:
            _process_metrics = Metrics()
        return _process_metrics


# --- instrumented search ----------------------------------------------------------------------


class InstrumentedSearcher:
    """Wraps a ``retrieval.search.Searcher``: ``search`` is timed and counted; everything else
    passes through (``best_mode``, ``weights``, …)."""

    def __init__(self, searcher: Any, metrics: Metrics):
        self._searcher = searcher
        self._metrics = metrics

    def search(self, question: str, principal: Any, collections: list[str], mode: str = "hybrid",
               *args: Any, **kwargs: Any) -> "SearchReport":
        started = time.perf_counter()
        try:
            report = self._searcher.search(question, principal, collections, mode, *args, **kwargs)
        except Exception as exc:
            self._metrics.searches.labels(mode, "error").inc()
            self._metrics.observe_error(exc)
            raise
        self._metrics.observe_search(mode, time.perf_counter() - started)
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self._searcher, name)


# --- ingestion, from the catalog's run history ------------------------------------------------


def collection_label(collection_id: str, name: str | None = None) -> str:
    """The ``collection`` label: the name when names are allowed (``name`` given), else an opaque
    stable id. Not the catalog id, which spells the start of the name."""
    if name is not None:
        return name
    return "c" + hashlib.sha256(collection_id.encode("utf-8")).hexdigest()[:12]


_REASON = re.compile(r"^([a-z_]+):")


def failure_reason(reason: str | None) -> str:
    """A bounded label for a failed file's reason (``ParseError`` reasons, not found, …)."""
    text = (reason or "").strip().lower()
    m = _REASON.match(text)
    if m:
        return m.group(1)
    for prefix, label in (("not found", "not_found"), ("unreadable", "unreadable"), ("internal error", "internal")):
        if text.startswith(prefix):
            return label
    return "other"


@dataclass
class _RunTotals:
    files: dict[tuple[str, str], int]
    chunks: dict[str, int]
    failures: dict[tuple[str, str], int]
    runs: dict[tuple[str, str], int]
    last_finished: dict[str, float]
    last_exit: dict[str, int]


class IngestRunsCollector(Collector):
    """``docent_ingest_*`` from the catalog's ``ingest_runs``: runs of every process count.
    Reads only the runs added since the previous scrape. ``names``: label with collection names."""

    def __init__(self, catalog: "Catalog", names: bool = False):
        self.catalog = catalog
        self.names = names
        self._last_id = 0
        self._t = _RunTotals({}, {}, {}, {}, {}, {})
        self._lock = threading.Lock()

    def _new_runs(self) -> list:
        limit = 256
        while True:
            runs = self.catalog.runs(limit=limit)
            if len(runs) < limit or runs[-1].id <= self._last_id:
                return sorted((r for r in runs if r.id > self._last_id), key=lambda r: r.id)
            limit *= 4

    def _update(self) -> None:
        t = self._t
        for run in self._new_runs():
            cid = run.collection_id
            for f in run.report.get("files", []):
                status = str(f.get("status", "unknown"))
                t.files[(cid, status)] = t.files.get((cid, status), 0) + 1
                if status == "indexed":
                    t.chunks[cid] = t.chunks.get(cid, 0) + int(f.get("chunks") or 0)
                elif status == "failed":
                    key = (cid, failure_reason(f.get("reason")))
                    t.failures[key] = t.failures.get(key, 0) + 1
            outcome = "ok" if run.exit_code == 0 else "failed_files" if run.exit_code == 1 else "error"
            t.runs[(cid, outcome)] = t.runs.get((cid, outcome), 0) + 1
            if run.finished_at >= t.last_finished.get(cid, 0.0):
                t.last_finished[cid] = run.finished_at
                t.last_exit[cid] = run.exit_code
            self._last_id = max(self._last_id, run.id)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            try:
                self._update()
                names = {c.id: c.name for c in self.catalog.list_collections()} if self.names else {}
            except Exception as exc:  # a scrape must not fail because the catalog is busy
                log.warning("ingestion metrics: catalog unreadable: %s", exc)
                names = {}
            t = self._t
            name = lambda cid: collection_label(cid, names.get(cid))  # noqa: E731
            files = CounterMetricFamily("docent_ingest_files", "Files seen by ingestion runs, by status "
                                        "(indexed, unchanged, failed, skipped, removed).", labels=["collection", "status"])
            for (cid, status), n in sorted(t.files.items()):
                files.add_metric([name(cid), status], n)
            chunks = CounterMetricFamily("docent_ingest_chunks", "Chunks written by ingestion runs.", labels=["collection"])
            for cid, n in sorted(t.chunks.items()):
                chunks.add_metric([name(cid)], n)
            failures = CounterMetricFamily("docent_ingest_failures", "Files that failed, by reason.",
                                           labels=["collection", "reason"])
            for (cid, reason), n in sorted(t.failures.items()):
                failures.add_metric([name(cid), reason], n)
            runs = CounterMetricFamily("docent_ingest_runs", "Ingestion runs, by outcome (ok, failed_files, error).",
                                       labels=["collection", "outcome"])
            for (cid, outcome), n in sorted(t.runs.items()):
                runs.add_metric([name(cid), outcome], n)
            last = GaugeMetricFamily("docent_ingest_last_run_timestamp_seconds",
                                     "When the latest ingestion run of the collection finished (alert when stale).",
                                     labels=["collection"])
            last_exit = GaugeMetricFamily("docent_ingest_last_run_exit_code",
                                          "Exit code of the latest run (0 ok, 1 some files failed).", labels=["collection"])
            for cid, ts in sorted(t.last_finished.items()):
                last.add_metric([name(cid)], ts)
                last_exit.add_metric([name(cid)], t.last_exit[cid])
            yield from (files, chunks, failures, runs, last, last_exit)

    def describe(self) -> Iterator[Any]:
        return iter(())  # unchecked collector: families are known only at scrape time


# --- index sizes ------------------------------------------------------------------------------


class IndexSizeCollector(Collector):
    """``docent_index_points`` / ``docent_index_documents`` / ``docent_index_version`` per
    collection, read from the index at scrape time. ``get_index`` returns the opened index or
    ``None`` (not opened yet: nothing is reported rather than opening it from a scrape).
    ``names``: label with collection names."""

    def __init__(self, get_index: Callable[[], "Index | None"], names: bool = False):
        self.get_index = get_index
        self.names = names

    def collect(self) -> Iterator[Any]:
        from retrieval.store.base import Filter, Match

        points = GaugeMetricFamily("docent_index_points", "Chunks (Qdrant points) in the collection's live index.",
                                   labels=["collection"])
        docs = GaugeMetricFamily("docent_index_documents", "Documents in the collection's live index.",
                                 labels=["collection"])
        version = GaugeMetricFamily("docent_index_version", "Physical index version the alias points at "
                                    "(changes when a re-index switches).", labels=["collection"])
        index = self.get_index()
        if index is not None:
            first = Filter(must=(Match("chunk_index", (0,)),))
            try:
                for rec in index.catalog.list_collections():
                    if not index.exists(rec):
                        continue
                    label = collection_label(rec.id, rec.name if self.names else None)
                    points.add_metric([label], index.count(rec))
                    docs.add_metric([label], index.count(rec, first))
                    version.add_metric([label], rec.version)
            except Exception as exc:
                log.warning("index size metrics unavailable: %s", exc)
        yield from (points, docs, version)

    def describe(self) -> Iterator[Any]:
        return iter(())


# --- serving ----------------------------------------------------------------------------------


@dataclass
class MetricsServer:
    port: int
    _httpd: Any
    _thread: threading.Thread

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_metrics(port: int, metrics: Metrics, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` (Prometheus text format) on ``addr:port`` from a daemon thread.
    ``port=0`` picks a free one (see ``.port``). Loopback by default: the endpoint has no
    authentication."""
    httpd, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return MetricsServer(int(httpd.server_address[1]), httpd, thread)


_servers: dict[int, MetricsServer] = {}
_servers_lock = threading.Lock()


def ensure_metrics_server(settings: "Settings", metrics: Metrics | None = None,
                          get_index: Callable[[], "Index | None"] | None = None) -> MetricsServer | None:
    """Start this process's metrics endpoint on ``settings.metrics_host:metrics_port`` once
    (``None``: off), with the ingestion and, given ``get_index``, the index-size collectors attached."""
    port = settings.metrics_port
    if not port:
        return None
    metrics = metrics or process_metrics()
    with _servers_lock:
        if port in _servers:
            return _servers[port]
        from retrieval.catalog import Catalog

        names = settings.metrics_collection_names
        metrics.add_collector(IngestRunsCollector(Catalog(settings.catalog_path), names))
        if get_index is not None:
            metrics.add_collector(IndexSizeCollector(get_index, names))
        server = _servers[port] = serve_metrics(port, metrics, settings.metrics_host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return server
