"""A real ``docent api`` server (uvicorn on a free loopback port, in a thread of the test process)
over a given ``Docent``, for tests that talk to it as clients do: over HTTP."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import uvicorn

from assistant.local_llm import free_port
from ui.api.server import create_api


@contextmanager
def running_api(app) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:PORT``); the server stops on exit."""
    port = free_port()
    hosts = [f"127.0.0.1:{port}"]
    config = uvicorn.Config(create_api(app, allowed_hosts=hosts), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and thread.is_alive(), "the API server did not start"
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
