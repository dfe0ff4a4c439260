"""Smoke check for a freshly built ``llama-server``: load a real model, ask one completion.

A binary that compiles and prints ``--version`` can still fault on its first matrix product
(AMX kernels on a CPU whose tile state the kernel does not grant), so a build is marked good
only after this check answers.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from assistant.local_llm.server_build import ServerBuildError

STARTUP_TIMEOUT_S = 300.0


def smoke_test(binary: Path, gguf: Path, *, log: Callable[[str], None], threads: int = 2) -> str:
    """Start ``binary`` on loopback with ``gguf``, request one short completion, stop it.

    Returns a one-line description of what answered; raises ServerBuildError with the
    server's last log lines if it dies or answers no completion.
    """
    from assistant.local_llm.server import free_port

    port = free_port()
    cmd = [
        str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "-t", str(threads), "-c", "512", "-np", "1", "--no-webui", "--jinja",
    ]  # fmt: skip
    log(f"Smoke-testing {binary.name}: one real completion with {gguf.name}…")
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            return _ask(proc, f"http://127.0.0.1:{port}")
        except ServerBuildError as exc:
            out.seek(0)
            tail = out.read().decode("utf-8", "replace").splitlines()[-12:]
            raise ServerBuildError(f"{exc}\n" + "\n".join(tail)) from None
        finally:
            proc.kill()
            proc.wait(timeout=30)


def _ask(proc: subprocess.Popen, root: str) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise ServerBuildError(f"llama-server exited with code {proc.returncode} while loading the model")
        try:
            if httpx.get(root + "/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServerBuildError(f"llama-server did not become healthy in {STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.25)
    body = {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 4, "temperature": 0}
    try:
        resp = httpx.post(root + "/v1/chat/completions", json=body, timeout=STARTUP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        code = proc.poll()
        raise ServerBuildError(f"the completion request failed ({exc}); server exit code {code}") from None
    if resp.status_code != 200:
        raise ServerBuildError(f"the completion request answered HTTP {resp.status_code}: {resp.text[:300]}")
    choice = resp.json()["choices"][0]
    tokens = resp.json().get("usage", {}).get("completion_tokens")
    return f"completion answered ({tokens} tokens, finish_reason {choice.get('finish_reason')})"
