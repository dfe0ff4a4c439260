"""A tiny real HTTP server that speaks the part of vLLM's API Docent uses: ``/v1/models`` (with
``max_model_len``), ``/tokenize``, streaming ``/v1/chat/completions`` and ``/health``.

For tests of what Docent does *around* the model (metrics, doctor, audit) where the words of
the answer do not matter and a real model would only cost minutes. Token counts are
whitespace-separated words, so a test can compute the expected numbers.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "Qwen/Qwen2.5-7B-Instruct"
MAX_MODEL_LEN = 131072


def word_count(value) -> int:
    if isinstance(value, str):
        return len(value.split())
    return sum(len(str(m.get("content", "")).split()) for m in value)


class VLLMStub:
    """``with VLLMStub(reply="Answer text [1].") as stub: stub.base_url``. A request whose
    messages contain ``FAIL`` gets HTTP 500."""

    def __init__(self, reply: str = "Employees get 25 days of annual leave [1].", pieces: int = 3,
                 delay_s: float = 0.05):
        self.reply = reply
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
                words = stub.reply.split(" ")
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
