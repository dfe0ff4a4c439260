"""Run the embedded default's ``llama-server`` on loopback for the lifetime of a ``with`` block.

If a healthy llama-server already serves the same model on the port (a previous app run, or
``python -m assistant.local_llm serve`` in another terminal), it is reused and left running.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from retrieval.settings import Settings

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LocalServerError(RuntimeError):
    """The local model server could not be started; the message says why and where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLLMServer:
    """``with LocalLLMServer(settings) as server: LLMClient(settings, base_url=server.base_url)``."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: str | None = None,
        port: int | None = None,
        threads: int | None = None,
        context_tokens: int | None = None,
        startup_timeout_s: float = 300.0,
        log: Log = _stderr,
    ):
        self.model = model or settings.local_llm
        if self.model == "none":
            raise LocalServerError("local_llm is 'none': no local model to serve")
        self.settings = settings
        self.port = port or settings.local_llm_port
        self.threads = threads or settings.local_llm_threads
        self.context_tokens = context_tokens or settings.local_llm_context_tokens
        self.startup_timeout_s = startup_timeout_s
        self.log = log
        self.reused = False
        self._proc: subprocess.Popen | None = None
        self.log_path = Path(settings.cache_dir) / "llama-server" / "logs" / f"{self.model}-{self.port}.log"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API base (``…/v1``)."""
        return self.root_url + "/v1"

    def command(self, binary: Path, gguf: Path) -> list[str]:
        return [
            str(binary), "-m", str(gguf), "--alias", self.model,
            "--host", "127.0.0.1", "--port", str(self.port),
            "-t", str(self.threads), "-c", str(self.context_tokens),
            "--jinja",  # the chat template stored in the GGUF, not a built-in guess
            # One slot: every request gets the whole context; concurrent requests queue, which
            # on 2 cores costs little and never fails a request for lack of KV space.
            "-np", "1",
            "--cache-ram", "512",  # prompt cache; the default 8 GiB is too much for a small box
            "--no-webui",
        ]  # fmt: skip

    def start(self) -> LocalLLMServer:
        if self._proc is not None or self.reused:
            return self
        if self._adopt_running():
            return self
        from assistant.local_llm.model_files import ensure_gguf
        from assistant.local_llm.server_build import ensure_llama_server

        gguf = ensure_gguf(self.model, self.settings.cache_dir, log=self.log)
        binary = self.settings.local_llm_server_bin or ensure_llama_server(
            self.settings.cache_dir, smoke_gguf=gguf, log=self.log
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command(Path(binary), gguf)
        self.log(f"Starting {self.model} on {self.root_url} (log: {self.log_path})")
        with open(self.log_path, "wb") as out:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _adopt_running(self) -> bool:
        status = _health(self.root_url)
        if status is None:
            return False
        served = _served_models(self.root_url)
        if self.model not in served:
            raise LocalServerError(
                f"port {self.port} is already in use by another server (serving {served or 'something else'}); "
                f"stop it or set DOCENT_LOCAL_LLM_PORT to a free port"
            )
        if status != 200:
            self._wait_healthy()  # still loading its model
        self.reused = True
        self.log(f"Reusing the {self.model} server already running on {self.root_url}")
        return True

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise LocalServerError(
                    f"llama-server exited with code {self._proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if _health(self.root_url) == 200:
                return
            time.sleep(0.25)
        raise LocalServerError(
            f"llama-server was not ready after {self.startup_timeout_s:.0f} s; log: {self.log_path}\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Foreground mode: run until Ctrl-C or until the server process dies."""
        with self:
            self.log(f"Serving {self.model} at {self.base_url}; Ctrl-C stops it")
            try:
                while self._proc is None or self._proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            if self._proc is not None and self._proc.returncode not in (None, 0):
                raise LocalServerError(f"llama-server died (code {self._proc.returncode}):\n{self._log_tail()}")


def _health(root_url: str) -> int | None:
    """HTTP status of ``/health`` (200 ready, 503 loading), or None when nothing listens."""
    try:
        return httpx.get(root_url + "/health", timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def _served_models(root_url: str) -> list[str]:
    try:
        data = httpx.get(root_url + "/v1/models", timeout=5.0).json().get("data") or []
    except (httpx.HTTPError, ValueError, AttributeError):
        return []
    return [name for d in data for name in (d.get("id"), *(d.get("aliases") or [])) if name]
