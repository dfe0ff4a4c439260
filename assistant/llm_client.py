"""Docent's one door to the language model: any OpenAI-compatible server, through LangChain.

Production runs vLLM; the embedded default runs llama.cpp's ``llama-server``; anything else
that speaks ``/v1/chat/completions`` works with fewer features (no server-side token count, no
guaranteed JSON schema). The client finds out which it is talking to from ``/v1/models``.

Failures become the three errors of ``assistant.errors``. Retries are done here, not by the
OpenAI SDK, because only we know whether a token has already reached the user: a request is
retried (exponential backoff) on connection errors, 429 and 5xx only before its first token,
never mid-stream, and never after a timeout (a retry would double an already long wait).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import openai

from assistant.errors import LLMError, LLMServerError, LLMTimeoutError, LLMUnavailableError
from assistant.token_estimate import estimate_message_tokens, estimate_tokens
from retrieval.settings import Settings

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
_ROLES = {"system", "user", "assistant"}
_CACHE_LIMIT = 4096  # token counts remembered per client (prompt builders ask about the same blocks again)


@dataclass(frozen=True)
class ServerInfo:
    model: str
    max_model_len: int
    has_tokenize: bool
    has_json_schema: bool
    kind: Literal["vllm", "llama.cpp", "openai-compatible"]


def split_base_url(base_url: str) -> tuple[str, str]:
    """``(server root, OpenAI API base)``: users write the URL with or without ``/v1``."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"the language model URL must start with http:// or https://, got {base_url!r}")
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    return root, root + "/v1"


def _check_messages(messages: Any) -> Messages:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise ValueError(
                f"messages[{i}] must be a dict with role in {sorted(_ROLES)} and string content, got {m!r:.120}"
            )
    return messages


class LLMClient:
    def __init__(self, settings: Settings, base_url: str | None = None):
        self.settings = settings
        url = base_url or settings.llm_base_url
        if not url:
            raise LLMUnavailableError(
                "no language model server configured",
                user_message="No language model server is configured (set DOCENT_LLM_BASE_URL, "
                "or let Docent start its local model). (docent doctor checks this)",
            )
        self.base_url = url
        self.root, self.api_base = split_base_url(url)
        timeout_s = settings.llm_timeout_s
        # Connecting to a live server takes milliseconds; a long connect means it is gone.
        self._timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self._http = httpx.Client(timeout=self._timeout)
        self._info: ServerInfo | None = None
        self._chat_model: Any = None
        self._counts: dict[str, int] = {}
        self._tokenize_broken = False

    # ----- server facts ---------------------------------------------------------------------

    def info(self) -> ServerInfo:
        if self._info is None:
            self._info = self._with_retries(self._discover)
        return self._info

    def _discover(self) -> ServerInfo:
        data = self._get_json(self.api_base + "/models").get("data") or []
        if not data:
            raise LLMServerError("/v1/models lists no model", base_url=self.base_url,
                                 server_message="the server lists no model")  # fmt: skip
        wanted = self.settings.llm_model
        entry = next((d for d in data if wanted in (d.get("id"), *(d.get("aliases") or []))), None)
        if entry is not None:
            model = wanted
        else:
            entry = data[0]
            model = entry["id"]
            log.info("model %r is not served at %s; using %r", wanted, self.base_url, model)
        if entry.get("owned_by") == "vllm" or "max_model_len" in entry:
            return ServerInfo(model, int(entry["max_model_len"]), True, True, "vllm")
        if entry.get("owned_by") == "llamacpp" or isinstance(entry.get("meta"), dict):
            n_ctx = (entry.get("meta") or {}).get("n_ctx") or self._llama_props_n_ctx()
            return ServerInfo(model, int(n_ctx or self.settings.llm_context_tokens), True, True, "llama.cpp")
        return ServerInfo(model, self.settings.llm_context_tokens, False, False, "openai-compatible")

    def _llama_props_n_ctx(self) -> int | None:
        try:
            props = self._get_json(self.root + "/props")
        except LLMServerError:
            return None
        return (props.get("default_generation_settings") or {}).get("n_ctx")

    def context_budget(self, reserve_answer: int | None = None) -> int:
        """Prompt tokens that fit: the served context length minus room for the answer."""
        reserve = self.settings.llm_answer_tokens if reserve_answer is None else reserve_answer
        max_len = self.info().max_model_len
        if reserve < 0 or reserve >= max_len:
            raise ValueError(f"answer reserve {reserve} must be between 0 and the context length {max_len}")
        return max_len - reserve

    # ----- token counting ---------------------------------------------------------------------

    def count_tokens(self, text_or_messages: str | Messages) -> int:
        """Tokens the served model sees: the server's own tokenizer (and chat template, for
        messages) where it has one, else a generous estimate."""
        if isinstance(text_or_messages, str):
            key = "s" + text_or_messages
        else:
            key = "m" + json.dumps(_check_messages(text_or_messages), ensure_ascii=False, sort_keys=True)
        if key in self._counts:
            return self._counts[key]
        count = self._count(text_or_messages)
        if len(self._counts) >= _CACHE_LIMIT:
            self._counts.clear()
        self._counts[key] = count
        return count

    def _count(self, value: str | Messages) -> int:
        info = self.info()
        if info.has_tokenize and not self._tokenize_broken:
            try:
                return self._with_retries(lambda: self._server_count(info, value))
            except LLMServerError as exc:
                # A proxy in front of the server may not route /tokenize: then estimate from now on.
                self._tokenize_broken = exc.status in (404, 405, 501)
                log.warning("token counting on the server failed (%s); estimating instead", exc)
        return estimate_tokens(value) if isinstance(value, str) else estimate_message_tokens(value)

    def _server_count(self, info: ServerInfo, value: str | Messages) -> int:
        if info.kind == "vllm":
            body: dict[str, Any] = {"model": info.model}
            body.update({"prompt": value} if isinstance(value, str) else {"messages": value, "add_generation_prompt": True})
            reply = self._post_json(self.root + "/tokenize", body)
            return int(reply["count"]) if "count" in reply else len(reply["tokens"])
        if not isinstance(value, str):  # llama.cpp: render the chat template, then count its tokens
            value = self._post_json(self.root + "/apply-template", {"messages": value})["prompt"]
        return len(self._post_json(self.root + "/tokenize", {"content": value})["tokens"])

    # ----- generation -------------------------------------------------------------------------

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int | None = None,
        json_schema: dict | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated."""
        _check_messages(messages)
        info = self.info()
        kwargs = self._call_kwargs(info, max_tokens, json_schema, temperature)
        chat = self._chat(info.model)
        attempt = 0
        while True:
            started = False
            try:
                for chunk in chat.stream(messages, **kwargs):
                    if isinstance(chunk.content, str) and chunk.content:
                        started = True
                        yield chunk.content
                return
            except Exception as exc:
                err = self._translate(exc)
                if err is None:
                    raise
                if started or not self._should_retry(exc, attempt):
                    raise err from exc
            time.sleep(self._backoff(attempt))
            attempt += 1

    def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int | None = None,
        json_schema: dict | None = None,
        temperature: float | None = None,
    ) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, json_schema=json_schema, temperature=temperature))

    def chat_message(self, messages: Messages, *, max_tokens: int | None = None, temperature: float | None = None,
                     json_schema: dict | None = None, **fields: Any) -> dict[str, Any]:
        """One request, not streamed, whose messages and ``fields`` (``tools``, ``tool_choice``)
        go to the server exactly as OpenAI defines them, for what LangChain would reshape: tool
        calls and tool results. Returns the reply's message (``content``, ``tool_calls``)."""
        info = self.info()
        kwargs = self._call_kwargs(info, max_tokens, json_schema, temperature)
        body = {"model": info.model, "messages": messages, "stream": False,
                "temperature": kwargs["temperature"], **kwargs["extra_body"], **fields}
        reply = self._with_retries(lambda: self._post_json(self.api_base + "/chat/completions", body))
        choices = reply.get("choices") or []
        if not choices or not isinstance(choices[0].get("message"), dict):
            raise LLMServerError(f"no message in the reply: {str(reply)[:200]}", base_url=self.base_url,
                                 server_message="it sent a reply without a message")  # fmt: skip
        return choices[0]["message"]

    async def acomplete(
        self,
        messages: Messages,
        *,
        max_tokens: int | None = None,
        json_schema: dict | None = None,
        temperature: float | None = None,
    ) -> str:
        """The whole answer, for many concurrent requests (map-reduce summaries)."""
        _check_messages(messages)
        info = self._info or await asyncio.to_thread(self.info)
        kwargs = self._call_kwargs(info, max_tokens, json_schema, temperature)
        attempt = 0
        while True:
            parts: list[str] = []
            try:
                async for text in self._astream_once(info.model, messages, kwargs):
                    parts.append(text)
                return "".join(parts)
            except Exception as exc:
                err = self._translate(exc)
                if err is None:
                    raise
                if parts or not self._should_retry(exc, attempt):
                    raise err from exc
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def _astream_once(self, model: str, messages: Messages, kwargs: dict) -> AsyncIterator[str]:
        # An httpx.AsyncClient belongs to one event loop; callers run asyncio.run() once per
        # summary, so each request gets its own client instead of one cached across loops.
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            chat = self._new_chat(model, http_async_client=client)
            async for chunk in chat.astream(messages, **kwargs):
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content

    def _call_kwargs(self, info: ServerInfo, max_tokens: int | None, json_schema: dict | None,
                     temperature: float | None) -> dict[str, Any]:  # fmt: skip
        # max_tokens, response_format and structured_outputs travel in extra_body: LangChain would rename the former
        # to max_completion_tokens (llama.cpp ignores that name) and route the latter through
        # the SDK's beta parse helper, which re-sends the whole completion at the end of a stream.
        body: dict[str, Any] = {"max_tokens": self.settings.llm_answer_tokens if max_tokens is None else max_tokens}
        if json_schema is not None:
            if info.kind == "vllm":
                # vLLM (0.25) takes exactly one structured-output constraint: response_format
                # json_schema combined with structured_outputs options is an HTTP 400 ("You must
                # use one kind of structured outputs constraint"). So the schema goes inside
                # structured_outputs, with disable_any_whitespace: the JSON grammar otherwise
                # lets a model emit whitespace without end and stop at max_tokens.
                body["structured_outputs"] = {"json": json_schema, "disable_any_whitespace": True}
            elif info.has_json_schema:  # llama-server: OpenAI's response_format
                name = re.sub(r"[^A-Za-z0-9_-]", "_", str(json_schema.get("title") or "response"))[:64]
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": json_schema, "strict": True},
                }
            else:
                log.warning("%s cannot constrain output to a JSON schema; asking without it", self.base_url)
        if info.kind == "vllm" and self.settings.llm_repetition_penalty is not None:
            # Overrides the model's generation_config default (see the setting's description).
            body["repetition_penalty"] = self.settings.llm_repetition_penalty
        temp = self.settings.llm_temperature if temperature is None else temperature
        return {"temperature": temp, "extra_body": body}

    def _chat(self, model: str) -> Any:
        if self._chat_model is None or self._chat_model.model_name != model:
            self._chat_model = self._new_chat(model, http_client=self._http)
        return self._chat_model

    def _new_chat(self, model: str, **clients: Any) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=self.api_base,
            api_key=self.settings.llm_api_key,
            model=model,
            timeout=self._timeout,
            max_retries=0,  # retried here, where "has a token been streamed yet" is known
            streaming=True,
            **clients,
        )

    # ----- HTTP, errors and retries -------------------------------------------------------------

    def _get_json(self, url: str) -> dict:
        return self._send(lambda: self._http.get(url))

    def _post_json(self, url: str, body: dict) -> dict:
        return self._send(lambda: self._http.post(url, json=body))

    def _send(self, request: Callable[[], httpx.Response]) -> dict:
        try:
            response = request()
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc  # type: ignore[misc]
        if response.status_code >= 400:
            raise LLMServerError(
                f"HTTP {response.status_code} from {response.request.url}: {response.text[:500]}",
                base_url=self.base_url, status=response.status_code, server_message=_message_of(response.text),
            )  # fmt: skip
        try:
            return response.json()
        except ValueError as exc:
            raise LLMServerError(f"{response.request.url} returned non-JSON: {response.text[:200]!r}",
                                 base_url=self.base_url,
                                 server_message="it sent a reply Docent cannot read") from exc  # fmt: skip

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return call()
            except LLMError as exc:
                if not self._should_retry(exc, attempt):
                    raise
            time.sleep(self._backoff(attempt))
            attempt += 1

    def _should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.settings.llm_retries:
            return False
        err = exc if isinstance(exc, LLMError) else self._translate(exc)
        if isinstance(err, LLMServerError):
            return err.status is not None and (err.status == 429 or err.status >= 500)
        # Unreachable: retry. Timed out: the server is alive but slow, and a retry doubles the wait.
        return isinstance(err, LLMUnavailableError)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(8.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)

    def _translate(self, exc: BaseException) -> LLMError | None:
        """The Docent error for a transport/SDK failure; None for anything else (a bug: re-raise)."""
        url, detail = self.base_url, f"{type(exc).__name__}: {exc}"
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return LLMTimeoutError(detail, base_url=url, timeout_s=self.settings.llm_timeout_s)
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            return LLMUnavailableError(detail, base_url=url)
        if isinstance(exc, openai.APIStatusError):
            return LLMServerError(detail, base_url=url, status=exc.status_code,
                                  server_message=_message_of(exc.body if exc.body is not None else exc.message))  # fmt: skip
        if isinstance(exc, openai.APIError):  # an error event inside the stream
            return LLMServerError(detail, base_url=url, server_message=_message_of(exc.body or exc.message))
        return None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _message_of(body: Any) -> str:
    """The human part of an error body: vLLM ``{"message"}``, OpenAI/llama.cpp ``{"error": {"message"}}``."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:300]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    return str(body)[:300] if body else ""
