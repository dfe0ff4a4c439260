"""A tiny real HTTP server that speaks the part of vLLM's API Docent uses: ``/v1/models`` (with
``max_model_len``), ``/tokenize``, streaming ``/v1/chat/completions`` and ``/health``.

For tests of what Docent does *around* the model (metrics, doctor, audit) where the words of
the answer do not matter and a real model would only cost minutes. Token counts are
whitespace-separated words, so a test can compute the expected numbers.

Structured output is checked the way vLLM 0.25 checks it: ``structured_outputs`` must name
exactly one constraint (``json``, ``regex``, ``choice``, ``grammar``, ``json_object``,
``structural_tag``); options alone (``{"disable_any_whitespace": true}``, even beside a
``response_format`` json_schema, which vLLM does not merge into it) get HTTP 400 "You must use
one kind of structured outputs constraint but none are specified". A constrained request is
answered with ``json_reply`` when one is given.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "Qwen/Qwen2.5-7B-Instruct"
MAX_MODEL_LEN = 131072
_CONSTRAINTS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")


def structured_outputs_error(body: dict) -> str | None:
    """vLLM 0.25's answer to a body's structured-output fields: None if accepted."""
    so = body.get("structured_outputs")
    if so is None:
        return None
    if not isinstance(so, dict):
        return "structured_outputs must be an object"
    kinds = [k for k in _CONSTRAINTS if so.get(k) is not None]
    if not kinds:
        return "You must use one kind of structured outputs constraint but none are specified"
    if len(kinds) > 1:
        return f"You can only use one kind of structured outputs constraint but multiple are specified: {kinds}"
    return None


def word_count(value) -> int:
    if isinstance(value, str):
        return len(value.split())
    return sum(len(str(m.get("content", "")).split()) for m in value)


class VLLMStub:
    """``with VLLMStub(reply="Answer text [1].") as stub: stub.base_url``. A request whose
    messages contain ``FAIL`` gets HTTP 500."""

    def __init__(self, reply: str = "Employees get 25 days of annual leave [1].", pieces: int = 3,
                 delay_s: float = 0.05, json_reply: str | None = None):
        self.reply = reply
        self.json_reply = json_reply
        self.chat_bodies: list[dict] = []
        self.pieces = pieces
        self.delay_s = delay_s
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                stub.requests.append(f"GET {self.path}")
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [
                        {"id": MODEL, "object": "model", "owned_by": "vllm", "max_model_len": MAX_MODEL_LEN}]})
                elif self.path == "/health":
                    self._json(200, {})
                else:
                    self._json(404, {"message": "not found"})

            def do_POST(self):
                stub.requests.append(f"POST {self.path}")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/tokenize":
                    n = word_count(body.get("prompt", body.get("messages", [])))
                    self._json(200, {"count": n, "tokens": list(range(n)), "max_model_len": MAX_MODEL_LEN})
                elif self.path == "/v1/chat/completions":
                    stub.chat_bodies.append(body)
                    error = structured_outputs_error(body)
                    if error:
                        self._json(400, {"object": "error", "message": error, "type": "BadRequestError",
                                         "param": None, "code": 400})
                        return
                    if "FAIL" in json.dumps(body.get("messages", [])):
                        self._json(500, {"message": "stub failure"})
                        return
                    self._stream(body)
                else:
                    self._json(404, {"message": "not found"})

            def _stream(self, body: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                constrained = body.get("structured_outputs") or body.get("response_format")
                reply = stub.json_reply if constrained and stub.json_reply is not None else stub.reply
                words = reply.split(" ")
                size = max(1, -(-len(words) // stub.pieces))
                parts = [" ".join(words[i:i + size]) + (" " if i + size < len(words) else "")
                         for i in range(0, len(words), size)]
                for i, text in enumerate(parts):
                    time.sleep(stub.delay_s)
                    delta = {"content": text} if i else {"role": "assistant", "content": text}
                    self._event({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, data: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def __enter__(self) -> "VLLMStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
