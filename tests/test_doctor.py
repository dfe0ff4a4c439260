"""``docent doctor``: one line per check, exit 1 on any failure — against a real HTTP server that
speaks vLLM's API, the real embedded index and the real embedding model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from ingest.batch import BatchIngest
from ingest.indexer import DocumentIndexer
from ingest.parse import parse_file
from retrieval.health import EmbeddingFacts, check_data_dir, check_embedding, check_qdrant, check_settings
from retrieval.workspace import Workspace

from .conftest import REPO, make_settings
from .ops_corpus import write_share
from .vllm_stub import VLLMStub

CHEAP = ["--check", "settings", "--check", "data", "--check", "disk", "--check", "qdrant", "--check", "llm",
         "--check", "safety"]


def doctor(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "DOCENT_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "ui.cli.main", "doctor", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=300)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_prints_one_line_per_check_and_fails_on_any_failure(tmp_path):
    data = tmp_path / "docent"
    with VLLMStub() as stub:
        ok = doctor(data, *CHEAP, DOCENT_LLM_BASE_URL=stub.base_url)
        as_json = doctor(data, "--check", "llm", "--json", DOCENT_LLM_BASE_URL=stub.base_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["settings", "data", "disk", "qdrant", "collections", "llm", "safety"]
    assert all(line.split()[0] in ("OK", "WARN") for line in lines)
    llm = next(line for line in lines if line.split()[1] == "llm")
    assert "vllm at" in llm and "Qwen/Qwen2.5-7B-Instruct" in llm
    assert "max_model_len 131,072" in llm and "tokenizer endpoint ok" in llm
    assert "embedded edge engine" in next(line for line in lines if line.split()[1] == "qdrant")
    [check] = json.loads(as_json.stdout)
    assert check["name"] == "llm" and check["status"] == "ok"

    down = doctor(data, *CHEAP, DOCENT_LLM_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1")
    assert down.returncode == 1
    assert any(line.startswith("FAIL  llm") and "not reachable" in line for line in down.stdout.splitlines())
    assert "failed: llm" in down.stderr

    bad_policy = doctor(data, "--check", "safety", DOCENT_BLOCKED_PATTERNS='["ok", "re:(unclosed"]')
    assert bad_policy.returncode == 1 and "FAIL  safety" in bad_policy.stdout and "#2" in bad_policy.stdout

    bad_setting = doctor(data, "--check", "settings", DOCENT_QDRANT_SHARDS="two")
    assert bad_setting.returncode == 2 and "DOCENT_QDRANT_SHARDS" in bad_setting.stderr
    assert "Traceback" not in bad_setting.stderr


def test_embedded_index_held_by_another_process_is_a_warning_not_a_failure(tmp_path, embedder):
    data = tmp_path / "docent"
    with Workspace(make_settings(data), embedder=embedder):
        out = doctor(data, "--check", "qdrant")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("WARN  qdrant") and "index busy" in out.stdout and f"pid {os.getpid()}" in out.stdout


def test_collections_must_match_the_configured_embedding_model(tmp_path, embedder):
    share = tmp_path / "share"
    write_share(share, ["leave-policy"])
    settings = make_settings(tmp_path / "docent")
    with Workspace(settings, embedder=embedder) as ws:
        rec = ws.ready_collection("Handbook", create=True)
        BatchIngest(ws.index, DocumentIndexer(settings, ws.index, embedder),
                    lambda p: parse_file(p, max_file_mb=10)).run(rec, [share])
        ws.catalog.create_collection("Empty")  # created, never ingested: fine

        check, facts = check_embedding(settings, embedder)
        assert check.status == "ok" and facts == EmbeddingFacts(embedder.model_id, embedder.dim)
        qdrant, collections = check_qdrant(settings, facts, store=ws.store)
        assert qdrant.status == "ok" and "1 physical collection" in qdrant.detail
        assert collections.status == "ok" and f"match {embedder.model_id} ({embedder.dim}-d)" in collections.detail

        _, collections = check_qdrant(settings, EmbeddingFacts("bge-m3@abc", 1024), store=ws.store)
        assert collections.status == "fail" and "Handbook" in collections.detail
        assert "docent reindex" in collections.hint

        ws.store.drop_collection(ws.index.target(rec))  # its alias goes with it
        _, collections = check_qdrant(settings, facts, store=ws.store)
        assert collections.status == "ok" and collections.detail == "no collection indexed yet"


def test_settings_and_data_checks_name_the_problem(tmp_path):
    bad = check_settings(make_settings(tmp_path / "d", chunk_tokens=64, chunk_overlap_tokens=64,
                                       llm_base_url="vllm:8000", metrics_port=8501))
    assert bad.status == "fail"
    assert "chunk_overlap_tokens" in bad.detail and "DOCENT_LLM_BASE_URL" in bad.detail
    assert "DOCENT_METRICS_PORT equals DOCENT_UI_PORT" in bad.detail
    (tmp_path / "file").write_text("x")
    unwritable = check_data_dir(make_settings(tmp_path / "file" / "docent"))
    assert unwritable.status == "fail" and "not writable" in unwritable.detail
