"""What the OpenAI-compatible API adds to an answer, and whether it holds under concurrent clients.

    .venv/bin/python benchmarks/api.py [--rounds 24] [--clients 16] [--extractive] [--out FILE]

The sample documents are indexed into a fresh data folder; the same question is then answered
in turns in-process (``Docent.ask``, time to its first text) and through the API on a loopback
port (a streaming request, time to the first content chunk), so both see the same passages and
the same model; the difference of each pair is the API's cost. Then N clients stream at once.
The model is DOCENT_LLM_BASE_URL's when set (vLLM), else the local 0.5B llama-server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from assistant.local_llm import free_port  # noqa: E402
from benchmarks.record import save  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from ui.api.server import serve_in_background  # noqa: E402
from ui.usecases import LOCAL_ADMIN, Docent  # noqa: E402

SAMPLES = _HERE.parent / "data" / "samples"
QUESTION = "How many days of paid annual leave do employees get?"


def in_process_ttft(app: Docent, principal) -> float:
    started = time.perf_counter()
    ttft = None
    for event in app.ask(principal, ["Samples"], QUESTION):
        if event.type == "delta" and ttft is None:
            ttft = time.perf_counter() - started
        elif event.type == "final" and ttft is None:
            ttft = time.perf_counter() - started
    return ttft * 1000


def api_ttft(http: httpx.Client, base: str, key: str) -> tuple[float, bool]:
    """Milliseconds to the first content chunk, and whether the stream ended with [DONE]. One
    client per caller, made before timing, as real clients keep theirs (an httpx client's set-up
    alone, its TLS context, costs tens of milliseconds)."""
    body = {"model": "docent/Samples", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    started = time.perf_counter()
    ttft, done = None, False
    with http.stream("POST", base + "/v1/chat/completions", json=body, timeout=600,
                     headers={"Authorization": f"Bearer {key}"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: ") and ttft is None:
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    ttft = time.perf_counter() - started
    return (ttft or time.perf_counter() - started) * 1000, done


def concurrent(base: str, key: str, clients: int) -> dict:
    results: list[tuple[float, bool] | str] = []
    lock = threading.Lock()

    def one(http: httpx.Client) -> None:
        try:
            out: tuple[float, bool] | str = api_ttft(http, base, key)
        except Exception as exc:  # noqa: BLE001 - counted, and the run goes on
            out = f"{type(exc).__name__}: {exc}"
        with lock:
            results.append(out)

    https = [httpx.Client() for _ in range(clients)]
    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(h,)) for h in https]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if isinstance(r, tuple) and r[1]]
    errors = [r for r in results if not (isinstance(r, tuple) and r[1])]
    ttfts = sorted(r[0] for r in ok)
    return {"clients": clients, "completed": len(ok), "errors": len(errors), "error_samples": [str(e) for e in errors[:3]],
            "wall_s": round(time.perf_counter() - started, 2),
            "ttft_ms_p50": round(statistics.median(ttfts), 1) if ttfts else None,
            "ttft_ms_max": round(ttfts[-1], 1) if ttfts else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=24)  # 8 rounds left the local model's noise in the median
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--extractive", action="store_true",
                    help="no model (extractive answers): the answer path's time without a model's noise, so the "
                         "API's own cost shows; on 2 CPU cores a local model's TTFT varies by more than the target")
    ap.add_argument("--out", type=Path, help="a fixed file for the record (default: a new one in benchmarks/results/runs)")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="docent-api-bench-"))
    model = "none" if args.extractive else os.environ.get("DOCENT_LOCAL_LLM", "qwen2.5-coder-0.5b")
    overrides = {"local_llm": model}
    settings = Settings(data_dir=data, questions_per_minute=0, api_requests_per_minute=0, llm_answer_tokens=64,
                        **overrides)
    with Docent.from_settings(settings) as app:
        app.ingest_folder(LOCAL_ADMIN, "Samples", [SAMPLES])
        app.users.add("bench", "bench-password-1")
        principal = app.principal("bench")
        _, key = app.create_api_key(LOCAL_ADMIN, "bench", "benchmark")
        port = free_port()
        serve_in_background(app, "127.0.0.1", port)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        http = httpx.Client()
        in_process_ttft(app, principal), api_ttft(http, base, key)  # warm both paths (model load, caches)
        pairs = []
        for i in range(args.rounds):  # alternate the order so drift hits both sides alike
            if i % 2:
                api, _ = api_ttft(http, base, key)
                local = in_process_ttft(app, principal)
            else:
                local = in_process_ttft(app, principal)
                api, _ = api_ttft(http, base, key)
            pairs.append((local, api))
            print(f"round {i + 1}: in-process {local:.0f} ms, API {api:.0f} ms")
        load = concurrent(base, key, args.clients)
    diffs = [a - b for b, a in pairs]
    result = {
        "benchmark": "api", "model": settings.llm_base_url or settings.local_llm, "rounds": args.rounds,
        "ttft_ms_in_process_p50": round(statistics.median(p[0] for p in pairs), 1),
        "ttft_ms_api_p50": round(statistics.median(p[1] for p in pairs), 1),
        "api_added_ms_p50": round(statistics.median(diffs), 1),
        "api_ttft_ratio_p50": round(statistics.median(a / b for b, a in pairs), 3),
        "target_added_ms": 20, "concurrent": load,
    }
    print(json.dumps(result, indent=2))
    print(f"saved {save('api-extractive' if args.extractive else 'api', result, args.out)}", file=sys.stderr)
    return 0 if load["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
