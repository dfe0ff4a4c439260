"""Health checks of the assistant side: the LLM server and the content-safety policy.

Same contract as ``retrieval/health.py``: one :class:`~retrieval.health.Check` per line of
``docent doctor``, never an exception.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from retrieval.health import Check
from retrieval.settings import Settings

_PROBE_TIMEOUT_S = 10.0


def check_llm(settings: Settings) -> Check:
    if settings.llm_base_url:
        return _check_server(settings, settings.llm_base_url, "")
    if settings.local_llm == "none":
        return Check("llm", "warn", "no language model configured: answers are extracted from the documents",
                     "set DOCENT_LLM_BASE_URL to a vLLM server, or DOCENT_LOCAL_LLM to a local model")
    return _check_local(settings)


def _check_server(settings: Settings, base_url: str, label: str) -> Check:
    from assistant.errors import LLMError
    from assistant.llm_client import LLMClient, split_base_url

    # One quick try: doctor reports, it does not wait out the retries the app would make.
    probe = settings.model_copy(update={"llm_retries": 0, "llm_timeout_s": min(settings.llm_timeout_s, _PROBE_TIMEOUT_S)})
    try:
        with LLMClient(probe, base_url=base_url) as client:
            info = client.info()
    except LLMError as exc:
        return Check("llm", "fail", f"{label}{base_url} not usable: {exc.user_message} ({exc})",
                     "start vLLM (deploy/vllm/serve.sh or deploy/compose.yaml) or fix DOCENT_LLM_BASE_URL")
    except ValueError as exc:
        return Check("llm", "fail", str(exc), "fix DOCENT_LLM_BASE_URL")
    root, _ = split_base_url(base_url)
    tokenizer = _probe_tokenize(root, info.kind, info.model, settings.llm_api_key) if info.has_tokenize else None
    parts = [f"{label}{info.kind} at {base_url} serves {info.model}", f"max_model_len {info.max_model_len:,}"]
    if not info.has_tokenize:
        parts.append("no tokenizer endpoint (token counts estimated)")
    else:
        parts.append("tokenizer endpoint ok" if tokenizer is None else f"tokenizer endpoint FAILED ({tokenizer})")
    status, hint = "ok", ""
    if info.model != settings.llm_model:
        status, hint = "warn", f"the server does not serve DOCENT_LLM_MODEL={settings.llm_model!r}; using {info.model!r}"
    if tokenizer is not None:
        status, hint = "warn", "token counts fall back to estimates; route /tokenize to the server"
    if info.max_model_len < settings.llm_answer_tokens * 2:
        status, hint = "fail", (
            f"the context ({info.max_model_len}) leaves no room beside {settings.llm_answer_tokens} answer tokens"
        )
    return Check("llm", status, "; ".join(parts), hint)


def _probe_tokenize(root: str, kind: str, model: str, api_key: str) -> str | None:
    """``None`` when the server's own tokenizer answers, else what went wrong."""
    body = {"model": model, "prompt": "docent doctor"} if kind == "vllm" else {"content": "docent doctor"}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key and api_key != "EMPTY" else {}
    try:
        reply = httpx.post(root + "/tokenize", json=body, headers=headers, timeout=_PROBE_TIMEOUT_S)
        reply.raise_for_status()
        data = reply.json()
        if not (data.get("tokens") or data.get("count")):
            return "no tokens in the reply"
    except (httpx.HTTPError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_local(settings: Settings) -> Check:
    from assistant.local_llm.model_files import MODELS, gguf_path
    from assistant.local_llm.server import _health
    from assistant.local_llm.server_build import cached_llama_server, last_build_failure

    name = settings.local_llm
    root = f"http://127.0.0.1:{settings.local_llm_port}"
    if _health(root) == 200:
        return _check_server(settings, root + "/v1", "local ")
    missing = []
    gguf = gguf_path(name, settings.cache_dir)
    if not gguf.is_file() or gguf.stat().st_size != MODELS[name].size:
        missing.append(f"model file {gguf}")
    binary = settings.local_llm_server_bin or cached_llama_server(settings.cache_dir)
    if binary is None or not (Path(binary).is_file() and os.access(binary, os.X_OK)):
        failure = last_build_failure(settings.cache_dir)
        if failure:
            return Check("llm", "fail", f"no llama-server build runs on this CPU: {failure}",
                         "answers fall back to extractive; see the build log in the cache's llama-server/logs")
        missing.append(f"a smoke-tested llama-server for this CPU ({binary or 'none built'})")
    if missing:
        return Check("llm", "fail", f"local {name} not prepared: missing {', '.join(missing)}",
                     "run `make models` (or python -m assistant.local_llm ensure) once on this machine")
    return Check("llm", "ok", f"local {name} ready to start on port {settings.local_llm_port} (not running now; "
                 "the UI starts it)")


def check_safety(settings: Settings) -> Check:
    from assistant.safety import SafetyConfigError, SafetyPolicy

    try:
        policy = SafetyPolicy.from_settings(settings)
    except SafetyConfigError as exc:
        return Check("safety", "fail", str(exc), "fix DOCENT_BLOCKED_PATTERNS / DOCENT_SAFETY_CLASSIFIER")
    except Exception as exc:  # a classifier factory that fails to construct
        return Check("safety", "fail", f"safety classifier failed to start: {type(exc).__name__}: {exc}",
                     "fix DOCENT_SAFETY_CLASSIFIER")
    rate = f"{settings.questions_per_minute} questions/min per user" if settings.questions_per_minute else "no rate limit"
    classifier = getattr(policy.classifier, "name", type(policy.classifier).__name__) if policy.classifier else "none"
    audit = "with question/answer text" if settings.audit_include_text else "without question/answer text"
    return Check("safety", "ok", f"{len(policy.rules)} blocked pattern(s), max {policy.max_input_chars:,} chars, "
                 f"{rate}, classifier: {classifier}; audit log {audit}")
