"""``docent api``: Docent as an OpenAI-compatible server (Starlette on uvicorn).

Routes: ``/healthz``; ``/v1/models`` (one model per readable collection, plus ``docent`` over
all); ``/v1/chat/completions``; ``/v1/tools`` and ``/v1/tools/search_documents``; ``/mcp`` (the
same search tool over MCP). Every route but ``/healthz`` takes ``Authorization: Bearer <key>``.

A thin adapter: it parses, calls ``ui.usecases.Docent`` and writes OpenAI-shaped JSON. The use
cases do the access checks, the guard (rate limit, safety policy), audit and metrics. Their
calls block (SQLite, the index, the model), so each runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from ui.api import openai_wire as wire
from ui.api.chat import ChatCompletions
from ui.api.chat_request import RequestError, parse_chat_request
from ui.api.search_tool import NAME as SEARCH_TOOL
from ui.api.search_tool import mcp_server, openai_tool, passage_records
from ui.usecases import Docent
from ui.usecases.api_access import ApiCaller, InvalidApiKeyError, KeyRateLimitedError, UnknownModelError
from ui.usecases.errors import (
    AnswerDataError,
    IndexBusyError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
    NoLanguageModelError,
    RateLimitedError,
    SearchError,
)

log = logging.getLogger(__name__)


class BodyTooLargeError(ValueError):
    pass


def _error(status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(wire.error_body(message, kind, code, param), status_code=status, headers=headers)


def error_response(exc: BaseException) -> JSONResponse:
    """The OpenAI error object and status for whatever a request raised."""
    if isinstance(exc, InvalidApiKeyError):
        return _error(401, str(exc), "invalid_request_error", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, (KeyRateLimitedError, RateLimitedError)):
        wait = max(1, round(exc.retry_after_s + 0.5))
        return _error(429, str(exc), "rate_limit_error", "rate_limit_exceeded", headers={"Retry-After": str(wait)})
    if isinstance(exc, UnknownModelError):
        return _error(404, str(exc), "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, BodyTooLargeError):
        return _error(413, str(exc), "invalid_request_error", "request_too_large")
    if isinstance(exc, RequestError):
        return _error(400, str(exc), "invalid_request_error", "invalid_request", exc.param)
    if isinstance(exc, (LLMUnavailableError, LLMTimeoutError, LLMServerError)):
        return _error(503, exc.user_message, "server_error", "llm_unavailable", headers={"Retry-After": "10"})
    if isinstance(exc, NoLanguageModelError):
        return _error(400, f"response_format and tools need a language model: {exc}", "invalid_request_error",
                      "no_language_model")
    if isinstance(exc, AnswerDataError):
        return _error(502, str(exc), "server_error", "schema_mismatch")
    if isinstance(exc, IndexBusyError):
        return _error(503, str(exc), "server_error", "index_busy", headers={"Retry-After": "10"})
    if isinstance(exc, (ValueError, SearchError)):
        return _error(400, str(exc), "invalid_request_error", "invalid_request")
    if isinstance(exc, PermissionError):
        return _error(403, str(exc), "permission_error", "forbidden")
    log.exception("API request failed", exc_info=exc)
    return _error(500, "The server failed to answer; the error is in its log.", "server_error", "internal_error")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _json_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the request body is over {limit} bytes")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise BodyTooLargeError(f"the request body is over {limit} bytes")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("the body is not valid JSON") from None


def create_api(app: Docent, *, allowed_hosts: list[str] | None = None) -> Starlette:
    settings = app.settings
    chat = ChatCompletions(app)
    public_url = chat.public_url
    api_url = settings.api_public_url or f"http://{settings.api_host}:{settings.api_port}"
    mcp, mcp_app = mcp_server(app, public_url, api_url, allowed_hosts or [])

    def endpoint(handler: Callable[[Request, ApiCaller], Any]):
        async def run(request: Request) -> Response:
            try:
                caller = await run_in_threadpool(app.api_caller, _bearer(request))
                return await handler(request, caller)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error object
                return error_response(exc)
        return run

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def list_models(request: Request, caller: ApiCaller) -> Response:
        models = await run_in_threadpool(app.api_models, caller.principal)
        return JSONResponse({"object": "list", "data": [_model(m) for m in models]})

    async def get_model(request: Request, caller: ApiCaller) -> Response:
        model = await run_in_threadpool(app.api_model, caller.principal, request.path_params["model"])
        return JSONResponse(_model(model))

    async def chat_completions(request: Request, caller: ApiCaller) -> Response:
        body = parse_chat_request(await _json_body(request, settings.api_max_body_bytes))
        turn = await run_in_threadpool(chat.start, caller, body)
        if body.stream:
            return StreamingResponse(chat.stream(turn), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSONResponse(await run_in_threadpool(chat.respond, turn))

    async def list_tools(request: Request, caller: ApiCaller) -> Response:
        return JSONResponse({"object": "list", "data": [openai_tool()]})

    async def run_search_tool(request: Request, caller: ApiCaller) -> Response:
        args = await _json_body(request, settings.api_max_body_bytes)
        if isinstance(args, dict) and isinstance(args.get("arguments"), str):  # a tool call as the model sent it
            args = json.loads(args["arguments"])
        if not isinstance(args, dict) or set(args) - {"query", "collection", "k"}:
            raise RequestError("arguments must be an object with query, and optionally collection and k")
        passages, model = await run_in_threadpool(app.search_documents, caller, args.get("query"),
                                                  args.get("collection") or "docent", args.get("k", 5))
        return JSONResponse({"object": "list", "data": passage_records(passages, model.names, public_url)})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        async with mcp.session_manager.run():
            yield

    routes = [
        Route("/healthz", healthz),
        Route("/v1/models", endpoint(list_models)),
        Route("/v1/models/{model:path}", endpoint(get_model)),
        Route("/v1/chat/completions", endpoint(chat_completions), methods=["POST"]),
        Route("/v1/tools", endpoint(list_tools)),
        Route(f"/v1/tools/{SEARCH_TOOL}", endpoint(run_search_tool), methods=["POST"]),
        Mount("/", app=mcp_app),  # /mcp and its OAuth resource metadata
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _model(m) -> dict:
    return {"id": m.id, "object": "model", "created": 0, "owned_by": "docent", "description": m.description,
            "collections": m.collections}


def _config(app: Docent, host: str, port: int):
    import uvicorn

    loopback = host in ("127.0.0.1", "localhost", "::1")
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"] if loopback else []
    return uvicorn.Config(create_api(app, allowed_hosts=hosts), host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=5)


def serve(app: Docent, host: str, port: int) -> None:
    import uvicorn

    uvicorn.Server(_config(app, host, port)).run()


def serve_in_background(app: Docent, host: str, port: int) -> threading.Thread:
    """The API in a daemon thread of another front end's process: ``docent ui`` on the embedded
    index, which only one process can open, serves both from the one ``Docent``."""
    import uvicorn

    thread = threading.Thread(target=uvicorn.Server(_config(app, host, port)).run, name="docent-api", daemon=True)
    thread.start()
    return thread
