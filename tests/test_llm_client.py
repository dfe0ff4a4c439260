"""LLMClient against a REAL llama-server (Qwen2.5-Coder-0.5B) and against tiny real HTTP servers
that misbehave on purpose (500, 400, slow, cut mid-stream, vLLM-shaped, bare OpenAI-compatible)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.errors import LLMServerError, LLMTimeoutError, LLMUnavailableError
from assistant.llm_client import LLMClient, split_base_url
from assistant.local_llm import free_port
from assistant.token_estimate import estimate_tokens
from retrieval.settings import Settings
from tests.llm_server_fixture import TEST_CONTEXT_TOKENS, TEST_MODEL, llama_server  # noqa: F401

pytestmark = pytest.mark.timeout(600)

# Token ids and the chat prompt's length (21) from the GGUF's own tokenizer and template, via
# transformers AutoTokenizer(gguf_file=...), measured once: loading it takes ~50 s, too slow here.
HELLO_IDS = [9707, 1879]
MIXED = "文档引用页码 citations [1]"
MIXED_IDS = [111116, 103346, 18538, 16476, 51846, 508, 16, 60]
CHAT = [
    {"role": "system", "content": "Answer from the documents only."},
    {"role": "user", "content": "Hello world"},
]
CHAT_RENDERED = (
    "<|im_start|>system\nAnswer from the documents only.<|im_end|>\n"
    "<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n"
)


def make(tmp_path, **kw) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "docent", **kw)


@pytest.fixture(scope="module")
def llm(tmp_path_factory, llama_server):  # noqa: F811
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("llm"), llm_base_url=llama_server.base_url,
                        llm_temperature=0.0, llm_answer_tokens=64)  # fmt: skip
    with LLMClient(settings) as client:
        yield client


# ----- against the real llama-server -----------------------------------------------------------


def test_info_reports_the_served_model_and_context(llm):
    info = llm.info()
    # The default llm_model (Qwen2.5-7B) is not served here: the client falls back to what is.
    assert (info.kind, info.model, info.max_model_len) == ("llama.cpp", TEST_MODEL, TEST_CONTEXT_TOKENS)
    assert info.has_tokenize and info.has_json_schema
    assert llm.context_budget() == TEST_CONTEXT_TOKENS - 64
    assert llm.context_budget(reserve_answer=1000) == TEST_CONTEXT_TOKENS - 1000
    with pytest.raises(ValueError, match="answer reserve"):
        llm.context_budget(reserve_answer=TEST_CONTEXT_TOKENS)


def test_count_tokens_uses_the_served_tokenizer_and_chat_template(llm):
    assert llm.count_tokens("Hello world") == len(HELLO_IDS)
    assert llm.count_tokens(MIXED) == len(MIXED_IDS)
    # Messages are counted through the model's chat template, special tokens as single tokens.
    assert llm.count_tokens(CHAT) == llm.count_tokens(CHAT_RENDERED) == 21
    text = "Employees receive 25 days of paid annual leave per calendar year. 员工每年享有二十五天带薪年假。" * 20
    served = llm.count_tokens(text)
    # The offline estimate errs on the generous side, but stays in the same range.
    assert served <= estimate_tokens(text) <= 2 * served


def test_stream_yields_deltas_that_join_to_the_answer(llm):
    messages = [{"role": "user", "content": "Write the numbers from 1 to 8, separated by commas, and nothing else."}]
    deltas = list(llm.stream(messages, max_tokens=30))
    assert len(deltas) >= 5, deltas
    text = "".join(deltas)
    assert "1, 2, 3" in text or "1,2,3" in text, text
    assert llm.complete(messages, max_tokens=30) == text  # greedy decoding: same answer either way


def test_json_schema_constrains_the_output(llm):
    schema = {
        "title": "verdict",
        "type": "object",
        "properties": {
            "answerable": {"type": "string", "enum": ["yes", "no", "partly"]},
            "page": {"type": "integer", "minimum": 1, "maximum": 999},
        },
        "required": ["answerable", "page"],
        "additionalProperties": False,
    }
    messages = [{"role": "user", "content": "Document, page 3: 'Leave is 25 days.' Can you tell the leave days? Reply."}]
    raw = llm.complete(messages, json_schema=schema, max_tokens=40)
    data = json.loads(raw)
    import jsonschema

    jsonschema.validate(data, schema)


def test_acomplete_serves_concurrent_requests_across_event_loops(llm):
    messages = [{"role": "user", "content": "Say OK."}]

    async def two():
        return await asyncio.gather(llm.acomplete(messages, max_tokens=5), llm.acomplete(messages, max_tokens=5))

    # Summaries call asyncio.run() once each: a second loop must not trip over the first's clients.
    for _ in range(2):
        answers = asyncio.run(two())
        assert all(a.strip() for a in answers), answers


# ----- failures, against real HTTP servers -------------------------------------------------------


class FakeServer:
    """A real HTTP server on a free port; ``routes`` maps "METHOD /path" to a handler function."""

    def __init__(self, routes):
        self.calls: list[tuple[str, dict | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.calls.append((f"{method} {self.path}", body))
                route = routes.get(f"{method} {self.path}")
                if route is None:
                    return self.reply(404, {"error": {"message": "not found"}})
                route(self, body)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def posts(self, path="/v1/chat/completions"):
        return [body for call, body in self.calls if call == f"POST {path}"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def models(owner="somebody", **extra):
    return lambda h, body: h.reply(200, {"object": "list", "data": [{"id": "m1", "owned_by": owner, **extra}]})


def sse_chunk(text):
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m1",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}  # fmt: skip
    return f"data: {json.dumps(chunk)}\n\n".encode()


def test_server_down_fails_fast_with_a_plain_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    client = LLMClient(make(tmp_path, llm_base_url=url, llm_retries=2))
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError) as err:
        client.complete([{"role": "user", "content": "hi"}])
    elapsed = time.monotonic() - started
    assert err.value.user_message == (
        f"The language model server at {url} is not reachable. Is it running? (docent doctor checks this)"
    )
    # Two backoffs (0.5 s, 1 s, ±20 %) and nothing more: retried, but no storm.
    assert 1.0 <= elapsed < 5.0, elapsed


def test_no_server_configured_is_a_plain_error(tmp_path):
    with pytest.raises(LLMUnavailableError) as err:
        LLMClient(make(tmp_path))
    assert "DOCENT_LLM_BASE_URL" in err.value.user_message


def test_http_500_is_retried_then_reported_with_the_servers_words(tmp_path):
    fail = lambda h, body: h.reply(500, {"error": {"message": "CUDA out of memory", "code": 500}})  # noqa: E731
    with FakeServer({"GET /v1/models": models(), "POST /v1/chat/completions": fail}) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url, llm_retries=2))
        with pytest.raises(LLMServerError) as err:
            list(client.stream([{"role": "user", "content": "hi"}]))
    assert len(srv.posts()) == 3  # the first try plus llm_retries
    assert err.value.status == 500 and err.value.server_message == "CUDA out of memory"
    assert "CUDA out of memory" in err.value.user_message and srv.url in err.value.user_message


def test_context_too_long_is_not_retried_and_says_so(tmp_path):
    msg = "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens."
    too_long = lambda h, body: h.reply(400, {"object": "error", "message": msg, "code": 400})  # noqa: E731
    with FakeServer({"GET /v1/models": models(), "POST /v1/chat/completions": too_long}) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url, llm_retries=2))
        with pytest.raises(LLMServerError) as err:
            client.complete([{"role": "user", "content": "hi"}])
    assert len(srv.posts()) == 1
    assert err.value.context_exceeded and "too long" in err.value.user_message


def test_slow_server_times_out_without_retry(tmp_path):
    def slow(h, body):
        time.sleep(3)
        h.reply(200, {})

    with FakeServer({"GET /v1/models": models(), "POST /v1/chat/completions": slow}) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url, llm_timeout_s=0.5, llm_retries=2))
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError) as err:
            client.complete([{"role": "user", "content": "hi"}])
        elapsed = time.monotonic() - started
    assert len(srv.posts()) == 1 and elapsed < 2.5, elapsed
    assert "did not answer within 0.5 seconds" in err.value.user_message


def test_connection_cut_mid_stream_is_not_retried(tmp_path):
    def cut(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        data = sse_chunk("Annual leave")
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        h.wfile.flush()
        h.close_connection = True  # ends without the terminating chunk: an incomplete body

    with FakeServer({"GET /v1/models": models(), "POST /v1/chat/completions": cut}) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url, llm_retries=2))
        received = []
        with pytest.raises(LLMUnavailableError):
            for delta in client.stream([{"role": "user", "content": "hi"}]):
                received.append(delta)
    assert received == ["Annual leave"] and len(srv.posts()) == 1


def test_vllm_server_is_recognised_and_counts_with_its_tokenizer(tmp_path):
    def tokenize(h, body):
        h.reply(200, {"count": 11 if "messages" in body else 7, "max_model_len": 32768, "tokens": []})

    routes = {"GET /v1/models": models("vllm", max_model_len=32768), "POST /tokenize": tokenize}
    with FakeServer(routes) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url.removesuffix("/v1"), llm_model="m1"))
        info = client.info()
        assert (info.kind, info.model, info.max_model_len, info.has_json_schema) == ("vllm", "m1", 32768, True)
        assert client.count_tokens("some text") == 7
        assert client.count_tokens([{"role": "user", "content": "q"}]) == 11
        assert client.count_tokens("some text") == 7  # answered from the cache
    bodies = srv.posts("/tokenize")
    assert bodies == [{"model": "m1", "prompt": "some text"},
                      {"model": "m1", "messages": [{"role": "user", "content": "q"}], "add_generation_prompt": True}]  # fmt: skip


def test_plain_openai_compatible_server_falls_back_to_settings_and_estimates(tmp_path):
    with FakeServer({"GET /v1/models": models()}) as srv:
        client = LLMClient(make(tmp_path, llm_base_url=srv.url, llm_context_tokens=16000))
        info = client.info()
        assert (info.kind, info.model, info.max_model_len, info.has_tokenize) == ("openai-compatible", "m1", 16000, False)
        assert client.count_tokens("x" * 35) == 10 and client.count_tokens("页码" * 5) == 10
    assert srv.posts("/tokenize") == []


def test_bad_input_gets_a_specific_error(tmp_path):
    with pytest.raises(ValueError, match="http:// or https://"):
        LLMClient(make(tmp_path, llm_base_url="localhost:8000"))
    assert split_base_url("http://h:8000/v1/") == ("http://h:8000", "http://h:8000/v1")
    client = LLMClient(make(tmp_path, llm_base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        client.complete([{"role": "robot", "content": "hi"}])


def test_tokenize_not_routed_falls_back_to_the_estimate_once(tmp_path):
    with FakeServer({"GET /v1/models": models("vllm", max_model_len=8192)}) as srv:  # no /tokenize route: 404
        client = LLMClient(make(tmp_path, llm_base_url=srv.url))
        assert client.count_tokens("x" * 35) == 10
        assert client.count_tokens("y" * 35) == 10
    assert len(srv.posts("/tokenize")) == 1  # not asked again after the 404


# ----- structured (JSON-schema) answers: the form each server accepts ----------------------------

VERDICT = {
    "title": "verdict",
    "type": "object",
    "properties": {"answerable": {"type": "string", "enum": ["yes", "no"]}, "page": {"type": "integer"}},
    "required": ["answerable", "page"],
    "additionalProperties": False,
}


def test_vllm_gets_the_schema_inside_structured_outputs_which_it_accepts(tmp_path):
    import httpx

    from tests.vllm_stub import MODEL, VLLMStub

    with VLLMStub(json_reply='{"answerable": "yes", "page": 3}', delay_s=0.0) as stub:
        # The stub behaves like vLLM 0.25: response_format json_schema plus structured_outputs
        # options is a 400, so this is the form Docent must not send.
        mixed = {"model": MODEL, "messages": [{"role": "user", "content": "q"}], "max_tokens": 8,
                 "response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT}},
                 "structured_outputs": {"disable_any_whitespace": True}}  # fmt: skip
        r = httpx.post(stub.base_url + "/chat/completions", json=mixed)
        assert r.status_code == 400 and "one kind of structured outputs constraint" in r.json()["message"]

        with LLMClient(make(tmp_path, llm_base_url=stub.base_url, llm_model=MODEL)) as client:
            raw = client.complete([{"role": "user", "content": "Leave days?"}], json_schema=VERDICT, max_tokens=40)
        assert json.loads(raw) == {"answerable": "yes", "page": 3}
        sent = stub.chat_bodies[-1]
        assert "response_format" not in sent
        assert sent["structured_outputs"] == {"json": VERDICT, "disable_any_whitespace": True}
        assert sent["max_tokens"] == 40 and sent["stream"] is True
        # Qwen's generation_config repetition_penalty (1.05) would otherwise apply: it penalises
        # the passage words a grounded answer must copy.
        assert sent["repetition_penalty"] == 1.0


def test_llama_server_keeps_response_format_json_schema(tmp_path):
    def chat(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        h.wfile.write(sse_chunk('{"answerable": "no", "page": 1}') + b"data: [DONE]\n\n")
        h.close_connection = True

    routes = {"GET /v1/models": models("llamacpp", meta={"n_ctx": 4096}), "POST /v1/chat/completions": chat}
    with FakeServer(routes) as srv:
        with LLMClient(make(tmp_path, llm_base_url=srv.url)) as client:
            assert json.loads(client.complete([{"role": "user", "content": "q"}], json_schema=VERDICT))["page"] == 1
    sent = srv.posts()[-1]
    assert "structured_outputs" not in sent
    assert "repetition_penalty" not in sent  # llama-server's own default is already 1.0
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "verdict", "schema": VERDICT, "strict": True}}  # fmt: skip
