"""Raw vLLM server figures (no Docent in the path): what Docent's end-to-end numbers
are measured against. Stdlib only, so it runs on the GPU machine without extra wheels.

Checks /v1/models (max_model_len), /tokenize, then single-stream streaming chat requests
at given prompt sizes (ignore_eos fixes the output length; a fresh random prefix per
request defeats the prefix cache, then one exact repeat measures the cached case), and
`response_format` json_schema structured output. Writes JSON lines like
h100-vllm025-qwen7b-shape-baseline.jsonl and prints a comparison with that baseline.

Usage:  python3 benchmarks/gpu/vllm_probe.py --base http://127.0.0.1:8000 \
            [--sizes 2500,10300] [--repeats 3] [--max-tokens 64] [--out probe.jsonl]
        python3 benchmarks/gpu/vllm_probe.py --wait 600   # wait for the server first
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "h100-vllm025-qwen7b-shape-baseline.jsonl"
WORDS = (
    "policy report contract employee budget review quarter revenue customer service "
    "section clause page table figure summary annual meeting board approval risk audit "
    "compliance supplier invoice payment schedule project milestone delivery quality "
    "safety training manual procedure request access account system network security "
    "incident response recovery backup storage document version owner department "
    "manager team office travel expense claim limit threshold exception appendix note "
    "the of and to in for on with by from at as is are was were be this that which "
    "shall must may should will can each every any all no not only also within under"
).split()
SYSTEM = ("You are Docent, a careful assistant. Answer only from the documents below and "
          "cite each claim as [n].")
SCHEMA = {
    "type": "object",
    "properties": {
        "found": {"type": "boolean"},
        "citations": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9},
                      "maxItems": 3},
        "confidence": {"enum": ["low", "medium", "high"]},
    },
    "required": ["found", "citations", "confidence"],
    "additionalProperties": False,
}


class ProbeError(RuntimeError):
    """The server answered something other than what the probe expects."""


class Server:
    def __init__(self, base: str, api_key: str | None, timeout: float = 600.0) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout

    def get(self, path: str) -> dict:
        req = urllib.request.Request(self.base + path, headers=self.headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.load(r)

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            raise ProbeError(f"POST {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def stream(self, path: str, body: dict):
        """Yield (arrival time, parsed SSE event) for a streaming POST."""
        url = urllib.parse.urlsplit(self.base + path)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
        conn.request("POST", url.path, body=json.dumps(body), headers=self.headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raise ProbeError(f"POST {path}: HTTP {resp.status}: {resp.read()[:500]!r}")
        try:
            for raw in resp:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                yield time.perf_counter(), json.loads(data)
        finally:
            conn.close()


def wait_ready(server: Server, timeout_s: float) -> float:
    t0 = time.monotonic()
    while True:
        try:
            server.get("/v1/models")
            return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() - t0 > timeout_s:
                raise ProbeError(f"server not ready after {timeout_s:.0f} s")
            time.sleep(2)


def count_tokens(server: Server, model: str, messages: list[dict]) -> int:
    r = server.post("/tokenize", {"model": model, "messages": messages,
                                  "add_generation_prompt": True})
    return int(r["count"])


def make_messages(server: Server, model: str, target: int, rng: random.Random) -> tuple[list[dict], int]:
    """Chat messages whose templated prompt is close to `target` tokens (within ~1%)."""
    nonce = f"Request {rng.getrandbits(64):016x}."  # first tokens differ: no cache reuse

    def build(n_words: int) -> list[dict]:
        words = " ".join(rng.choice(WORDS) for _ in range(n_words))
        return [{"role": "system", "content": f"{nonce} {SYSTEM}"},
                {"role": "user", "content": f"Documents:\n{words}\n\nSummarise the documents."}]

    n_words = max(1, int(target / 1.2))
    for _ in range(4):
        msgs = build(n_words)
        got = count_tokens(server, model, msgs)
        if abs(got - target) <= max(16, target // 100):
            return msgs, got
        n_words = max(1, int(n_words * target / got))
    return msgs, got


def stream_chat(server: Server, model: str, messages: list[dict], max_tokens: int) -> dict:
    body = {
        "model": model, "messages": messages, "max_tokens": max_tokens, "stream": True,
        "ignore_eos": True, "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    first = None
    usage = {}
    for t, event in server.stream("/v1/chat/completions", body):
        for choice in event.get("choices") or []:
            if first is None and (choice.get("delta") or {}).get("content") is not None:
                first = t
        if event.get("usage"):
            usage = event["usage"]
    total = time.perf_counter() - t0
    if first is None:
        raise ProbeError("stream ended without a content token")
    ttft = first - t0
    out = int(usage.get("completion_tokens", 0))
    decode = (out - 1) / (total - ttft) if out > 1 and total > ttft else 0.0
    return {"prompt_tokens": int(usage.get("prompt_tokens", 0)), "out_tokens": out,
            "ttft_s": round(ttft, 3), "total_s": round(total, 3), "decode_tok_s": round(decode, 1)}


def valid_answer(obj: object) -> bool:
    """Check SCHEMA by hand (no jsonschema on the device's base image)."""
    if not isinstance(obj, dict) or set(obj) != {"found", "citations", "confidence"}:
        return False
    cites = obj["citations"]
    return (isinstance(obj["found"], bool) and obj["confidence"] in ("low", "medium", "high")
            and isinstance(cites, list) and len(cites) <= 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 9 for c in cites))


def structured(server: Server, model: str, tries: int) -> list[dict]:
    """`response_format` json_schema as Docent sends it, then the same schema with
    free whitespace disabled. Random weights (dummy load) tend to pick whitespace,
    which the JSON grammar allows without end, so the first may stop at max_tokens;
    the second must always end in a valid object."""
    results = []
    msgs = [{"role": "user", "content": "Is the refund policy in the documents? Answer as JSON."}]
    fmt = {"type": "json_schema", "json_schema": {"name": "docent_answer", "schema": SCHEMA,
                                                  "strict": True}}
    variants = {
        "response_format": {"response_format": fmt},
        "response_format+no_ws": {"response_format": fmt,
                                  "structured_outputs": {"disable_any_whitespace": True}},
    }
    for name, extra in variants.items():
        ok = 0
        finishes = []
        sample = ""
        t0 = time.perf_counter()
        for seed in range(tries):
            body = {"model": model, "messages": msgs, "max_tokens": 200, "temperature": 1.0,
                    "seed": seed, **extra}
            try:
                r = server.post("/v1/chat/completions", body)
            except ProbeError as exc:
                finishes.append(f"error: {exc}")
                continue
            choice = r["choices"][0]
            text = choice["message"].get("content") or ""
            finishes.append(choice.get("finish_reason"))
            try:
                if valid_answer(json.loads(text)):
                    ok += 1
                    sample = sample or text
            except json.JSONDecodeError:
                pass
        results.append({"step": "structured", "variant": name, "tries": tries, "valid": ok,
                        "finish_reasons": finishes, "sample": sample[:200],
                        "wall_s": round(time.perf_counter() - t0, 2)})
    return results


def load_baseline() -> dict[tuple[str, int], dict]:
    rows = {}
    if BASELINE.is_file():
        for line in BASELINE.read_text().splitlines():
            row = json.loads(line)
            if row["step"].startswith("single"):
                rows[(row["step"], row["prompt_tokens"])] = row
    return rows


def nearest(baseline: dict, step: str, tokens: int) -> dict | None:
    cands = [(abs(k[1] - tokens), v) for k, v in baseline.items() if k[0] == step]
    if not cands:
        return None
    diff, row = min(cands, key=lambda c: c[0])
    return row if diff <= 0.1 * tokens else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--wait", type=float, default=0.0, help="wait this long for /v1/models")
    ap.add_argument("--sizes", default="2500,10300", help="prompt sizes in tokens")
    ap.add_argument("--repeats", type=int, default=3, help="fresh prompts per size")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--structured-tries", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="JSON lines")
    args = ap.parse_args(argv)

    server = Server(args.base, args.api_key)
    rows: list[dict] = []
    try:
        if args.wait:
            print(f"ready after {wait_ready(server, args.wait):.1f} s", flush=True)
        models = server.get("/v1/models")["data"]
        model = models[0]["id"]
        rows.append({"step": "server", "model": model, "max_model_len": models[0].get("max_model_len")})
        tok = server.post("/tokenize", {"model": model, "prompt": "Hello, world"})
        rows.append({"step": "tokenize", "prompt": "Hello, world", "tokens": tok.get("tokens"),
                     "count": tok.get("count"), "max_model_len": tok.get("max_model_len")})
        rng = random.Random(20261123)
        # Warm-up: first request pays one-off costs (sampler graphs, tokenizer caches).
        stream_chat(server, model, make_messages(server, model, 500, rng)[0], 8)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            runs = []
            for _ in range(args.repeats):
                msgs, _ = make_messages(server, model, size, rng)
                runs.append(stream_chat(server, model, msgs, args.max_tokens))
                rows.append({"step": "single", "target_tokens": size, **runs[-1]})
            rows.append({"step": "single_median", "target_tokens": size,
                         "prompt_tokens": runs[-1]["prompt_tokens"],
                         "ttft_s": round(statistics.median(r["ttft_s"] for r in runs), 3),
                         "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in runs), 1)})
            rows.append({"step": "single_cached_prefix", "target_tokens": size,
                         **stream_chat(server, model, msgs, args.max_tokens)})
        if args.structured_tries:
            rows.extend(structured(server, model, args.structured_tries))
    except (ProbeError, OSError, KeyError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.out:
            args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    baseline = load_baseline()
    for r in rows:
        line = json.dumps(r)
        if r["step"] in ("single_median", "single_cached_prefix"):
            ref = nearest(baseline, "single" if r["step"] == "single_median" else r["step"],
                          r["prompt_tokens"])
            if ref:
                line += (f"   <- baseline {ref['prompt_tokens']} tok: TTFT {ref['ttft_s']} s, "
                         f"decode {ref['decode_tok_s']} tok/s")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
