"""Docent's own time to first token beside vLLM's, for the same request bytes (issue 13).

    DOCENT_LLM_BASE_URL=http://127.0.0.1:8000/v1 DOCENT_BENCH_OUT=DIR python3 benchmarks/gpu/docent_vs_vllm.py

run_all.sh runs it after the raw probe. With dummy weights the inline-marks answer path is
used (``llm_answer_format=inline``) with ``ignore_eos`` and a fixed ``max_tokens``, so a first
token always exists.

Method (each row uncached unless it says so):
* Docent: ``Answerer.stream_answer`` (prompt building, token counting on the server, passage
  fitting, LangChain streaming, the inline citation-mark filter) from the call to the first
  ``delta`` event. Retrieval is a fixed list of passages built from ``data/samples`` (the
  retriever and the embedding model are *not* in this figure).
* The HTTP body Docent sent is captured byte for byte (httpx request hook). For the raw
  figure those bytes are sent again by a plain httpx stream with only the per-trial nonce
  (in passage 1, same length) replaced, so the prompt is not in the prefix cache; TTFT =
  first non-empty ``delta.content``.
* cached: the exact captured bytes again (raw), and the same question again (Docent).
* 32 concurrent: 32 threads through one shared LLMClient (Docent's service layer shares
  one), each its own nonce; then 32 raw streams of those bodies with fresh nonces.
* summary: ``stream_summary`` over ~100k tokens of sample sections (one pass when it fits),
  then the same document again (prefix cached).
* structured: Docent's JSON-schema answer form on vLLM (``structured_outputs.json`` +
  ``disable_any_whitespace``): HTTP status and whether the reply parses.

Writes ``$DOCENT_BENCH_OUT/docent_vs_vllm.json`` after every section, so a run cut short
still leaves what it measured. ``DOCENT_BENCH_BUDGET_S`` (default 240) skips later sections.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from assistant.answerer import Answerer  # noqa: E402
from assistant.llm_client import LLMClient  # noqa: E402
from assistant.prompts import answer_schema  # noqa: E402
from assistant.summarizer import stream_summary  # noqa: E402
from retrieval.models import Passage  # noqa: E402
from retrieval.settings import Settings  # noqa: E402

MAX_TOKENS = 64
CONTEXT_TOKENS = int(os.environ.get("DOCENT_BENCH_CONTEXT", "8000"))
TRIALS = 5
USERS = 32
SUMMARY_TOKENS = int(os.environ.get("DOCENT_BENCH_SUMMARY_DOC", "100000"))
QUESTION = "What is the daily meal allowance in Shanghai, and who approves trips?"
BUDGET_S = float(os.environ.get("DOCENT_BENCH_BUDGET_S", "240"))
T_START = time.perf_counter()


def _load_answer_bench():
    spec = importlib.util.spec_from_file_location("bench_answer", _ROOT / "benchmarks" / "answer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BenchClient(LLMClient):
    """Docent's client, plus ``ignore_eos`` (dummy weights) and a copy of every chat body sent."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        self._http.event_hooks["request"].append(self._capture)

    def _capture(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            with self._lock:
                self.bodies.append(request.read())

    def _call_kwargs(self, *args, **kwargs):
        kw = super()._call_kwargs(*args, **kwargs)
        kw["extra_body"] = {**kw["extra_body"], "ignore_eos": True}
        return kw


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 4)


def summary_stats(values: list[float]) -> dict:
    return {"n": len(values), "median_s": pct(values, 0.5), "p95_s": pct(values, 0.95),
            "max_s": round(max(values), 4) if values else None}


def nonce() -> str:
    return uuid.uuid4().hex[:12]


def with_nonce(passages: list[Passage], tag: str) -> list[Passage]:
    first = passages[0].model_copy(update={"text": f"Reference {tag}. " + passages[0].text})
    return [first, *passages[1:]]


def docent_ttft(settings, llm, passages, tag: str) -> tuple[float | None, float, bytes | None]:
    """Seconds to Docent's first delta, total seconds, and the chat body it sent."""
    p = with_nonce(passages, tag)
    answerer = Answerer(settings, llm, lambda q: p, rewrite_with_llm=False, structured=False, max_tokens=MAX_TOKENS)
    t0 = time.perf_counter()
    first = None
    for event in answerer.stream_answer(QUESTION):
        if event.type == "delta" and first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    with llm._lock:
        body = next((b for b in reversed(llm.bodies) if tag.encode() in b), None)
    return first, total, body


def raw_ttft(http: httpx.Client, url: str, body: bytes) -> tuple[float | None, float, int]:
    t0 = time.perf_counter()
    first = None
    with http.stream("POST", url, content=body, headers={"Content-Type": "application/json"}) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        for line in r.iter_lines():
            if first is None and line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                choices = chunk.get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - t0
    return first, time.perf_counter() - t0, r.status_code


def main() -> None:
    out_dir = Path(os.environ.get("DOCENT_BENCH_OUT") or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "docent_vs_vllm.json"
    result: dict = {"method": __doc__.split("Method", 1)[1].split("Writes", 1)[0].strip(),
                    "max_tokens": MAX_TOKENS, "ignore_eos": True, "answer_format": "inline",
                    "retrieval": "fixed passage list (retriever/embedding not included)", "sections": {}}

    def save() -> None:
        result["elapsed_s"] = round(time.perf_counter() - T_START, 1)
        out_file.write_text(json.dumps(result, indent=1))

    def section(name: str, fn) -> None:
        if time.perf_counter() - T_START > BUDGET_S:
            result["sections"][name] = {"skipped": f"time budget {BUDGET_S:.0f} s used up"}
            print(f"[{name}] skipped: budget", flush=True)
            save()
            return
        t = time.perf_counter()
        try:
            result["sections"][name] = fn()
        except Exception as exc:  # record and go on: a partial run is still worth having
            result["sections"][name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}
        result["sections"][name]["section_s"] = round(time.perf_counter() - t, 1)
        print(f"[{name}] {json.dumps(result['sections'][name])[:1500]}", flush=True)
        save()

    settings = Settings(llm_answer_format="inline", llm_temperature=0.0, llm_answer_tokens=MAX_TOKENS)
    llm = BenchClient(settings)
    info = llm.info()
    result["server"] = {"kind": info.kind, "model": info.model, "max_model_len": info.max_model_len,
                        "base_url": llm.base_url}
    url = llm.api_base + "/chat/completions"
    http = httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0),
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    bench = _load_answer_bench()
    sections = bench.sample_sections()
    passages = bench.passages_for(sections, llm, CONTEXT_TOKENS)
    result["context"] = {"passages": len(passages), "target_tokens": CONTEXT_TOKENS}
    save()

    def single() -> dict:
        # warm-up (CUDA graphs, the tokenizer's caches): not counted
        docent_ttft(settings, llm, passages, nonce())
        rows = []
        for _ in range(TRIALS):
            a, b = nonce(), nonce()
            d_first, d_total, body = docent_ttft(settings, llm, passages, a)
            if body is None:
                raise RuntimeError("Docent's chat body was not captured")
            r_first, r_total, _ = raw_ttft(http, url, body.replace(a.encode(), b.encode()))
            r_cached, _, _ = raw_ttft(http, url, body)
            d_cached, _, _ = docent_ttft(settings, llm, passages, a)
            rows.append({"docent_ttft_s": d_first, "docent_total_s": round(d_total, 4), "raw_ttft_s": r_first,
                         "raw_total_s": round(r_total, 4), "raw_cached_ttft_s": r_cached,
                         "docent_cached_ttft_s": d_cached})
        sample = json.loads(body)
        prompt_tokens = llm.count_tokens(sample["messages"])
        d = [r["docent_ttft_s"] for r in rows if r["docent_ttft_s"] is not None]
        r_ = [r["raw_ttft_s"] for r in rows if r["raw_ttft_s"] is not None]
        med_d, med_r = statistics.median(d), statistics.median(r_)
        return {"prompt_tokens": prompt_tokens, "body_bytes": len(body),
                "body_keys": sorted(k for k in sample if k != "messages"),
                "body_options": {k: v for k, v in sample.items() if k not in ("messages",)},
                "rows": rows, "docent_ttft_median_s": round(med_d, 4), "raw_ttft_median_s": round(med_r, 4),
                "overhead_ms_median": round((med_d - med_r) * 1000, 1),
                "docent_cached_median_s": round(statistics.median(
                    [r["docent_cached_ttft_s"] for r in rows if r["docent_cached_ttft_s"] is not None]), 4),
                "raw_cached_median_s": round(statistics.median(
                    [r["raw_cached_ttft_s"] for r in rows if r["raw_cached_ttft_s"] is not None]), 4),
                "target": "docent <= raw + 150 ms at ~8k tokens",
                "meets_target": (med_d - med_r) <= 0.150}

    def concurrent() -> dict:
        tags = [nonce() for _ in range(USERS)]
        d_res: dict[int, tuple] = {}
        errors: list[str] = []

        def user(i: int) -> None:
            try:
                d_res[i] = docent_ttft(settings, llm, passages, tags[i])
            except Exception as exc:
                errors.append(f"docent[{i}] {type(exc).__name__}: {exc} @ {traceback.format_exc()[-700:]}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        d_wall = time.perf_counter() - t0
        bodies = [(tags[i], d_res[i][2]) for i in sorted(d_res) if d_res[i][2] is not None]
        r_res: dict[int, tuple] = {}
        r_errors: list[str] = []

        def raw_user(i: int, tag: str, body: bytes) -> None:
            try:
                r_res[i] = raw_ttft(http, url, body.replace(tag.encode(), nonce().encode()))
            except Exception as exc:
                r_errors.append(f"raw[{i}] {type(exc).__name__}: {exc}"[:300])

        time.sleep(1.0)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=raw_user, args=(i, tag, body)) for i, (tag, body) in enumerate(bodies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r_wall = time.perf_counter() - t0
        d_ttft = [v[0] for v in d_res.values() if v[0] is not None]
        r_ttft = [v[0] for v in r_res.values() if v[0] is not None]
        d95, r95 = pct(d_ttft, 0.95), pct(r_ttft, 0.95)
        return {"users": USERS, "docent": {**summary_stats(d_ttft), "wall_s": round(d_wall, 3),
                                           "errors": len(errors), "no_first_token": len(d_res) - len(d_ttft)},
                "raw": {**summary_stats(r_ttft), "wall_s": round(r_wall, 3), "errors": len(r_errors)},
                "p95_ratio": round(d95 / r95, 3) if d95 and r95 else None,
                "target": "docent p95 <= 1.3 x raw p95, 0 errors",
                "meets_target": bool(d95 and r95 and d95 / r95 <= 1.3 and not errors),
                "error_samples": (errors + r_errors)[:3]}

    def structured() -> dict:
        # Docent's structured-output form on the real vLLM: must be accepted (not HTTP 400).
        plain = LLMClient(Settings(llm_temperature=0.0))
        schema = answer_schema([1, 2, 3])
        msgs = [{"role": "user", "content": "Reply with the answer object."}]
        rows = []
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                raw = plain.complete(msgs, json_schema=schema, max_tokens=512)
                try:
                    json.loads(raw)
                    ok = True
                except ValueError:
                    ok = False
                rows.append({"accepted": True, "valid_json": ok, "chars": len(raw), "s": round(time.perf_counter() - t0, 3)})
            except Exception as exc:
                rows.append({"accepted": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return {"form": "extra_body.structured_outputs = {json: schema, disable_any_whitespace: true}",
                "rows": rows}

    def summary() -> dict:
        from assistant.answer_models import SourceSection

        doc, tokens, i = [], 0, 0
        while tokens < SUMMARY_TOKENS:
            s = sections[i % len(sections)]
            doc.append(SourceSection(label=f"{s.label} #{i}", page=s.page, heading_path=s.heading_path,
                                     start=s.start, end=s.end, text=s.text))
            tokens += llm.count_tokens(s.text) + 15
            i += 1
        rows = []
        for label in ("uncached", "cached (same document again)"):
            t0 = time.perf_counter()
            first = final = None
            for event in stream_summary(doc, llm, max_tokens=256):
                if event.type == "delta" and first is None:
                    first = time.perf_counter() - t0
                elif event.type == "final":
                    final = event.summary
            total = time.perf_counter() - t0
            rows.append({"run": label, "path": final.path, "prompt_tokens": final.prompt_tokens,
                         "llm_calls": final.llm_calls, "ttft_s": round(first, 3) if first else None,
                         "total_s": round(total, 3), "server_ttft_ms": final.timings.get("ttft_ms")})
        return {"sections": len(doc), "rows": rows, "target": "<= 20 s end to end",
                "meets_target": rows[0]["total_s"] <= 20.0}

    section("single_8k", single)
    section("concurrent_32", concurrent)
    section("structured_vllm", structured)
    section("summary_100k", summary)
    save()
    print(f"wrote {out_file}", flush=True)


if __name__ == "__main__":
    main()
