"""Which language model answers: the configured server, the embedded local one, or none.

Production sets ``DOCENT_LLM_BASE_URL`` (vLLM). The embedded default starts (or reuses) the
small local llama-server when its one-time preparation is done; otherwise answers are
extractive and say so — a missing model never turns into a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.llm_client import LLMClient
from assistant.local_llm.model_files import gguf_path
from assistant.local_llm.server import LocalLLMServer, LocalServerError
from assistant.local_llm.server_build import cached_llama_server
from retrieval.settings import Settings


@dataclass(frozen=True)
class LLMChoice:
    client: LLMClient | None
    source: str  # "server", "local", or "none"
    notice: str = ""


def local_model_ready(settings: Settings) -> bool:
    if settings.local_llm == "none":
        return False
    binary = settings.local_llm_server_bin or cached_llama_server(settings.cache_dir)
    return gguf_path(settings.local_llm, settings.cache_dir).exists() and binary is not None and binary.exists()


@contextmanager
def open_llm(settings: Settings, quiet: bool = True) -> Iterator[LLMChoice]:
    if settings.llm_base_url:
        yield LLMChoice(LLMClient(settings), "server")
        return
    if not local_model_ready(settings):
        why = ("no language model is configured (DOCENT_LOCAL_LLM=none)" if settings.local_llm == "none"
               else "the local model is not prepared yet (run `make models`)")
        yield LLMChoice(None, "none", f"Extractive answer: {why}.")
        return
    try:
        server = LocalLLMServer(settings, log=(lambda _line: None) if quiet else print)
        server.__enter__()
    except LocalServerError as exc:
        yield LLMChoice(None, "none", f"Extractive answer: the local model could not start ({exc}).")
        return
    try:
        yield LLMChoice(LLMClient(settings, base_url=server.base_url), "local")
    finally:
        server.__exit__(None, None, None)
