"""Operations around every question: Prometheus metrics (scraped over real HTTP), the audit log
(no question text by default), the content-safety policy and the per-user rate limit.

Real parts: the embedded index with real DOCX files and the real embedding model, the real
Answerer (extractive, or streaming from a real HTTP server that speaks vLLM's API), a real
metrics endpoint parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.answer_models import Answer, AnswerEvent
from assistant.answerer import Answerer
from assistant.guard import AnswerGuard
from assistant.llm_client import LLMClient
from assistant.llm_telemetry import InstrumentedLLM
from assistant.rate_limit import RateLimiter
from assistant.safety import CLASSIFIER_DOWN, ClassifierResult, SafetyConfigError, SafetyPolicy
from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.parse import parse_file
from retrieval.models import Principal
from retrieval.search import Searcher
from retrieval.telemetry import (
    IndexSizeCollector,
    IngestRunsCollector,
    InstrumentedSearcher,
    Metrics,
    collection_label,
    serve_metrics,
)
from retrieval.workspace import Workspace

from .conftest import make_settings
from .ops_corpus import write_share
from .vllm_stub import MODEL, VLLMStub, word_count

ALICE = Principal(user="alice", groups=["staff"])
QUESTION = "How many days of paid annual leave does every employee receive? (ticket QX-93817)"
MARKER = "QX-93817"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder):
    """A workspace with three documents ingested (one broken file too), shared by this module."""
    root = tmp_path_factory.mktemp("ops")
    share = root / "share"
    write_share(share, ["leave-policy", "travel-expenses", "it-security"])
    (share / "broken.docx").write_bytes(b"not a zip")
    settings = make_settings(root / "docent")
    with Workspace(settings, embedder=embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        indexer = DocumentIndexer(settings, ws.index, embedder)
        report = BatchIngest(ws.index, indexer, lambda p: parse_file(p, max_file_mb=10)).run(rec, [share])
        ws.catalog.add_run(rec.id, report.started_at, report.finished_at, report.exit_code,
                           report.summary_line(), report.to_json_dict())
        yield ws, rec, report


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_endpoint_counts_searches_ingestion_and_index_size(indexed):
    ws, rec, report = indexed
    metrics = Metrics()
    metrics.add_collector(IngestRunsCollector(ws.catalog, names=True))
    metrics.add_collector(IndexSizeCollector(lambda: ws.index, names=True))
    searcher = InstrumentedSearcher(Searcher.from_workspace(ws), metrics)
    server = serve_metrics(0, metrics, addr="127.0.0.1")
    try:
        before = scrape(server.port)
        assert value(before, "docent_searches_total", mode="hybrid", outcome="ok") == 0
        for q in ("annual leave days", "hotel costs per night"):
            assert searcher.search(q, ALICE, ["Handbook"], mode="hybrid", k=3).passages
        searcher.search("password length", ALICE, ["Handbook"], mode="sparse", k=3)
        with pytest.raises(ValueError):
            searcher.search("   ", ALICE, ["Handbook"], mode="hybrid")
        assert searcher.best_mode == "hybrid"  # everything else passes through

        after = scrape(server.port)
        assert value(after, "docent_searches_total", mode="hybrid", outcome="ok") == 2
        assert value(after, "docent_searches_total", mode="sparse", outcome="ok") == 1
        assert value(after, "docent_searches_total", mode="hybrid", outcome="error") == 1
        assert value(after, "docent_errors_total", kind="search") == 1
        assert value(after, "docent_retrieval_latency_seconds_count", mode="hybrid") == 2
        assert value(after, "docent_retrieval_latency_seconds_sum", mode="hybrid") > 0

        # Ingestion, from the catalog's run history: what the report said, by status and reason.
        totals = report.totals
        assert value(after, "docent_ingest_files_total", collection="Handbook", status="indexed") == totals["indexed"] == 3
        assert value(after, "docent_ingest_files_total", collection="Handbook", status="failed") == 1
        assert value(after, "docent_ingest_failures_total", collection="Handbook", reason="corrupt") == 1
        assert value(after, "docent_ingest_chunks_total", collection="Handbook") == totals["chunks"] > 0
        assert value(after, "docent_ingest_runs_total", collection="Handbook", outcome="failed_files") == 1
        assert value(after, "docent_ingest_last_run_timestamp_seconds", collection="Handbook") == pytest.approx(
            report.finished_at)

        # Index sizes, read from the index at scrape time.
        assert value(after, "docent_index_points", collection="Handbook") == ws.index.count(rec)
        assert value(after, "docent_index_documents", collection="Handbook") == 3
        assert value(after, "docent_index_version", collection="Handbook") == 1

        # A new run is counted once, on top of the earlier ones (incremental read of the history).
        ws.catalog.add_run(rec.id, report.started_at, report.finished_at + 5, 0, "again",
                           {"files": [{"path": "/x.docx", "status": "indexed", "chunks": 4}]})
        again = scrape(server.port)
        assert value(again, "docent_ingest_files_total", collection="Handbook", status="indexed") == 4
        assert value(again, "docent_ingest_chunks_total", collection="Handbook") == totals["chunks"] + 4
    finally:
        server.close()


def test_metrics_label_collections_by_an_opaque_id_unless_names_are_allowed(indexed):
    ws, rec, _ = indexed
    metrics = Metrics()
    metrics.add_collector(IngestRunsCollector(ws.catalog))
    metrics.add_collector(IndexSizeCollector(lambda: ws.index))
    text = metrics.render()
    assert "handbook" not in text.lower()  # neither the name nor the id derived from it
    label = collection_label(rec.id)
    assert f'docent_index_documents{{collection="{label}"}} 3.0' in text
    assert f'docent_ingest_runs_total{{collection="{label}",outcome="failed_files"}} 1.0' in text


def test_llm_metrics_ttft_tokens_and_errors_beside_vllm_names(tmp_path):
    metrics = Metrics()
    settings = make_settings(tmp_path / "d", llm_retries=0)
    messages = [{"role": "system", "content": "Answer from the passages."},
                {"role": "user", "content": "How many leave days are there?"}]
    with VLLMStub(reply="Employees get twenty-five days of annual leave [1].", pieces=3, delay_s=0.05) as stub:
        llm = InstrumentedLLM(LLMClient(settings, base_url=stub.base_url), metrics)
        text = "".join(llm.stream(messages))
        assert text == "Employees get twenty-five days of annual leave [1]."
        assert llm.info().max_model_len == 131072  # everything else passes through
        with pytest.raises(Exception) as failed:
            list(llm.stream([{"role": "user", "content": "FAIL please"}]))

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics.render()) for s in f.samples}
    # Same names' shape, units and model_name label as vllm:time_to_first_token_seconds & co.
    assert value(samples, "docent_llm_time_to_first_token_seconds_count", model_name=MODEL) == 1
    ttft = value(samples, "docent_llm_time_to_first_token_seconds_sum", model_name=MODEL)
    total = value(samples, "docent_llm_request_latency_seconds_sum", model_name=MODEL)
    assert 0.04 <= ttft < total  # the stub waits 50 ms before each of its three pieces
    assert value(samples, "docent_llm_time_to_first_token_seconds_bucket", model_name=MODEL, le="0.04") == 0
    assert value(samples, "docent_llm_prompt_tokens_total", model_name=MODEL) == word_count(messages)
    assert value(samples, "docent_llm_generation_tokens_total", model_name=MODEL) == word_count(text)
    assert value(samples, "docent_llm_requests_total", model_name=MODEL, outcome="ok") == 1
    assert value(samples, "docent_llm_requests_total", model_name=MODEL, outcome="error") == 1
    assert type(failed.value).__name__ == "LLMServerError"
    assert value(samples, "docent_errors_total", kind="llm_server") == 1


# --- audit and the guarded answer ---------------------------------------------------------------


def guarded_answer(ws, guard: AnswerGuard, question: str, principal=ALICE, llm=None) -> tuple[list[AnswerEvent], Answer]:
    searcher = Searcher.from_workspace(ws)
    # Inline [n] answers: the stub streams plain text, not the JSON-schema format.
    answerer = Answerer(ws.settings, llm, lambda q: searcher.search(q, principal, ["Handbook"], k=4).passages,
                        structured=False)
    events = list(guard.stream(principal, ["Handbook"], question, lambda q: answerer.stream_answer(q)))
    assert events[-1].type == "final"
    return events, events[-1].answer


def audit_lines(guard: AnswerGuard) -> list[dict]:
    path = guard.audit.path_for()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_audit_line_names_who_what_and_cited_documents_but_not_the_question(indexed, tmp_path, caplog):
    ws, rec, _ = indexed
    metrics = Metrics()
    settings = make_settings(tmp_path / "audit-run")
    guard = AnswerGuard.from_settings(settings, metrics)
    caplog.set_level(logging.DEBUG)
    with VLLMStub(reply="Every employee receives twenty-five days of paid annual leave per year [1].") as stub:
        llm = InstrumentedLLM(LLMClient(settings.model_copy(update={"llm_retries": 0}), base_url=stub.base_url), metrics)
        events, answer = guarded_answer(ws, guard, QUESTION, llm=llm)

    assert any(e.type == "delta" for e in events)
    [line] = audit_lines(guard)
    assert line["user"] == "alice" and line["groups"] == ["staff"] and line["admin"] is False
    assert line["collections"] == ["Handbook"] and line["event"] == "question"
    assert line["outcome"] == answer.mode
    assert line["passages"] == len(answer.passages) > 0
    assert line["question_chars"] == len(QUESTION) and line["answer_chars"] == len(answer.answer)
    assert {"retrieval_ms", "ttft_ms", "total_ms"} <= set(line["timings_ms"])
    assert [c["document_id"] for c in line["cited"]] == list(dict.fromkeys(c.document_id for c in answer.citations))
    assert line["cited"] and line["cited"][0]["path"].endswith("leave-policy.docx")
    # Privacy: neither the question nor the answer is in the audit file or in any log record.
    raw = guard.audit.path_for().read_text(encoding="utf-8")
    assert MARKER not in raw and "question" not in line and "answer" not in line
    assert "twenty-five days of paid" not in raw
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert MARKER not in logged and "annual leave does every employee" not in logged
    # The audit file is private to the service account.
    assert guard.audit.path_for().stat().st_mode & 0o077 == 0
    assert metrics.render().count(f'docent_questions_total{{outcome="{answer.mode}"}} 1.0') == 1


def test_audit_includes_text_only_when_the_setting_says_so(indexed, tmp_path):
    ws, _, _ = indexed
    guard = AnswerGuard.from_settings(make_settings(tmp_path / "with-text", audit_include_text=True))
    _, answer = guarded_answer(ws, guard, QUESTION)  # no LLM: extractive
    [line] = audit_lines(guard)
    assert line["question"] == QUESTION and line["answer"] == answer.answer
    assert line["outcome"] == answer.mode == "extractive"


# --- safety -------------------------------------------------------------------------------------


def test_blocked_or_oversized_question_is_refused_without_running_the_answerer(tmp_path):
    metrics = Metrics()
    settings = make_settings(tmp_path / "d", max_question_chars=120,
                             blocked_patterns=["salary of", r"re:\b\d{3}-\d{2}-\d{4}\b", "机密"])
    guard = AnswerGuard.from_settings(settings, metrics)

    def must_not_run(q):
        raise AssertionError("the answerer ran for a refused question")

    cases = [
        ("What is the salary of the CEO?", "blocked_pattern"),
        ("What is the ＳＡＬＡＲＹ of Bob?", "blocked_pattern"),  # full-width letters
        ("Whose number is 123-45-6789?", "blocked_pattern"),
        ("这份机密文件说了什么？", "blocked_pattern"),  # a CJK term inside a sentence
        ("x" * 121, "max_chars"),
    ]
    for question, rule in cases:
        events = list(guard.stream(ALICE, ["Handbook"], question, must_not_run))
        assert len(events) == 1 and events[0].type == "final", question
        answer = events[0].answer
        assert answer.mode == "refused" and answer.notice == answer.answer
        assert "salary" not in answer.answer.lower() and "123-45" not in answer.answer
        if rule == "max_chars":
            assert "121 characters" in answer.answer and "120" in answer.answer
        else:
            assert "content policy" in answer.answer
    lines = audit_lines(guard)
    assert [x["outcome"] for x in lines] == ["blocked_input"] * 5
    assert lines[0]["rule"] == "blocked pattern #1" and lines[2]["rule"] == "blocked pattern #2"
    assert all("salary" not in json.dumps(x).lower() for x in lines)
    text = metrics.render()
    assert 'docent_safety_refusals_total{direction="input",rule="blocked_pattern"} 4.0' in text
    assert 'docent_safety_refusals_total{direction="input",rule="max_chars"} 1.0' in text
    # Whole words only for plain terms: "pin" does not block "spinning".
    assert SafetyPolicy(["pin"]).check_input("Is the spinning class free?").allowed
    assert not SafetyPolicy(["pin"]).check_input("What is my PIN?").allowed


def test_output_policy_stops_the_stream_and_replaces_the_answer(tmp_path):
    guard = AnswerGuard.from_settings(make_settings(tmp_path / "d", blocked_patterns=[r"re:SECRET-\d+"]))
    produced: list[str] = []

    def answer_stream(q):
        for text in ("The door code is ", "SECRET-", "42, and the safe ", "is in room 4."):
            produced.append(text)
            yield AnswerEvent(type="delta", text=text)
        yield AnswerEvent(type="final", answer=Answer(answer="The door code is SECRET-42.", mode="generated"))

    events = list(guard.stream(ALICE, ["Handbook"], "What is the door code?", answer_stream))
    assert [e.type for e in events] == ["delta", "delta", "final"]  # "SECRET-42" completes in the 3rd delta
    assert events[-1].answer.mode == "refused" and "withheld" in events[-1].answer.answer
    assert "SECRET" not in events[-1].answer.answer
    assert len(produced) == 3  # generation stopped: the 4th piece was never produced
    [line] = audit_lines(guard)
    assert line["outcome"] == "blocked_output" and "SECRET" not in json.dumps(line)


class KeywordClassifier:
    name = "keyword-test"

    def classify(self, text, direction):
        if "explosive" in text.lower():
            return ClassifierResult(True, "violence", 0.97)
        if "crash" in text.lower():
            raise RuntimeError("classifier backend down")
        return ClassifierResult(False)


def make_classifier(settings):
    return KeywordClassifier()


def test_classifier_plugs_in_from_settings_and_fails_closed(tmp_path):
    settings = make_settings(tmp_path / "d", safety_classifier="tests.test_ops_metrics_audit_safety:make_classifier")
    policy = SafetyPolicy.from_settings(settings)
    assert policy.classifier.name == "keyword-test"
    flagged = policy.check_input("How do I make an explosive?")
    assert not flagged.allowed and flagged.rule == "classifier" and "(violence)" in flagged.message
    down = policy.check_input("What if the server should crash?")
    assert not down.allowed and down.message == CLASSIFIER_DOWN
    assert SafetyPolicy(classifier=KeywordClassifier(), fail_closed=False).check_input("crash").allowed
    assert policy.check_input("How many leave days?").allowed
    assert not policy.check_output("Here is how to build an explosive device.").allowed
    assert policy.check_output("Here is how to build an explosive", final=False).allowed  # streaming: patterns only

    with pytest.raises(SafetyConfigError, match="#2"):
        SafetyPolicy(["fine", "re:(unclosed"])
    with pytest.raises(SafetyConfigError, match="package.module:factory"):
        SafetyPolicy.from_settings(make_settings(tmp_path / "e", safety_classifier="nocolon"))


# --- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_is_per_user_and_sliding():
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("alice").allowed and limiter.check("alice").allowed
    now[0] += 20
    refused = limiter.check("alice")
    assert not refused.allowed and refused.retry_after_s == pytest.approx(40)
    assert "40 seconds" in refused.message
    assert limiter.check("bob").allowed
    now[0] += 40.5  # the first two questions left the window
    assert limiter.check("alice").allowed
    assert RateLimiter(0).check("alice").allowed  # 0 = off
    with pytest.raises(ValueError):
        RateLimiter(-1)


def test_guard_applies_the_rate_limit_per_user(tmp_path):
    metrics = Metrics()
    guard = AnswerGuard.from_settings(make_settings(tmp_path / "d", questions_per_minute=1), metrics)
    ran: list[str] = []

    def answer_stream(q):
        ran.append(q)
        yield AnswerEvent(type="final", answer=Answer(answer="ok", mode="generated"))

    assert list(guard.stream(ALICE, [], "first?", answer_stream))[-1].answer.mode == "generated"
    second = list(guard.stream(ALICE, [], "second?", answer_stream))[-1].answer
    assert second.mode == "refused" and "in the last minute" in second.answer
    assert list(guard.stream(Principal(user="bob"), [], "bob's first?", answer_stream))[-1].answer.mode == "generated"
    assert ran == ["first?", "bob's first?"]
    assert [x["outcome"] for x in audit_lines(guard)] == ["generated", "rate_limited", "generated"]
    assert "docent_rate_limited_total 1.0" in metrics.render()
