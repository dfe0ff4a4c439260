"""Docent's GPU path end to end (issue 13): ingestion with the embedding model on the GPU, and
time to first token with retrieval included, beside vLLM's own TTFT for the same bytes.

    DOCENT_LLM_BASE_URL=http://127.0.0.1:8000/v1 DOCENT_BENCH_OUT=DIR \\
        python3 benchmarks/gpu/docent_gpu_path.py --corpus DIR [--pages 2000] [--cpu-pages 600]

Method:
* corpus: the PDFs under ``--corpus`` (copied from ../shared/data/documents, carried to the
  device), repeated under new names until ``--pages`` pages; every copy is a separate file, so
  it is parsed, chunked and embedded again (nothing is deduplicated by content).
* ingestion: the real ``docent ingest`` command (a subprocess, as cron runs it) into a fresh
  data dir, once with ``DOCENT_EMBEDDING_DEVICE=cuda`` over the whole corpus and once with
  ``cpu`` over the first ``--cpu-pages`` pages of it (the CPU run is the slow one; pages/s is
  the comparable figure). Wall time includes model loading; the batch job's own start/finish
  stamps give the job time.
* answer with retrieval: ``Searcher.search`` (query embedded on the GPU, hybrid search in the
  embedded Qdrant engine over the ingested corpus plus ``data/samples``) feeding
  ``Answerer.stream_answer`` with the inline-marks form, ``ignore_eos`` and fixed
  ``max_tokens`` (dummy weights). Docent's TTFT runs from the question to the first streamed
  delta. A per-trial nonce is put in front of the first retrieved passage so no prompt is in
  the prefix cache; the captured request bytes are replayed raw with a fresh nonce for vLLM's
  own TTFT. Then 32 users at once through one shared searcher and LLM client, and the same
  bodies raw.

Writes ``$DOCENT_BENCH_OUT/docent_gpu_path.json`` after every section.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from assistant.answerer import Answerer  # noqa: E402
from retrieval.models import Principal  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.workspace import Workspace  # noqa: E402

QUESTIONS = [
    "What is the daily meal allowance in Shanghai?",
    "How many days of paid annual leave do employees get?",
    "Who approves international travel?",
    "What does the memo say about the budget?",
]
COLLECTION = "Bench"
K = 24  # about 8k prompt tokens of passages, the size the single-user target names
USERS = 32
TRIALS = 5


def _common():
    spec = importlib.util.spec_from_file_location("docent_vs_vllm", _HERE / "docent_vs_vllm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pdf_pages(path: Path) -> int:
    from pypdf import PdfReader

    try:
        return len(PdfReader(str(path)).pages)
    except Exception:
        return 0


def build_corpus(src: Path, dest: Path, pages: int) -> dict:
    """Copies of the source PDFs under new names until ``pages`` pages; returns what it made."""
    files = sorted((p, pdf_pages(p)) for p in src.rglob("*.pdf"))
    files = [(p, n) for p, n in files if n > 0]
    if not files:
        raise SystemExit(f"no readable PDFs under {src}")
    dest.mkdir(parents=True, exist_ok=True)
    total, copies, made = 0, 0, []
    while total < pages:
        for p, n in files:
            target = dest / f"copy{copies:02d}-{p.name}"
            shutil.copyfile(p, target)
            made.append((target, n))
            total += n
            if total >= pages:
                break
        copies += 1
    return {"files": len(made), "pages": total, "sources": [p.name for p, _ in files], "list": made}


def subset(made: list[tuple[Path, int]], dest: Path, pages: int) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for p, n in made:
        if total >= pages:
            break
        shutil.copyfile(p, dest / p.name)
        total += n
    return total


def run_ingest(folder: Path, data_dir: Path, device: str, pages: int) -> dict:
    env = {**os.environ, "DOCENT_DATA_DIR": str(data_dir), "DOCENT_EMBEDDING_DEVICE": device,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    report = data_dir / "ingest-report.json"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ui.cli.main", "ingest", str(folder), "--collection", COLLECTION,
                           "--no-progress", "--report", str(report)],
                          env=env, cwd=_ROOT, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    row = {"device": device, "pages": pages, "exit": proc.returncode, "wall_s": round(wall, 2),
           "pages_per_s_wall": round(pages / wall, 2)}
    if report.exists():
        data = json.loads(report.read_text())
        job = data["finished_at"] - data["started_at"]
        row.update(job_s=round(job, 2), pages_per_s_job=round(pages / job, 2) if job else None,
                   totals=data.get("totals"), stdout_tail=proc.stdout.strip()[-300:],
                   failed=[f for f in data.get("files", []) if f.get("status") == "failed"][:3])
    if proc.returncode != 0:
        row["stderr"] = proc.stderr[-1500:]
    return row


def ingestion(args, work: Path, result: dict, save) -> Path:
    corpus = build_corpus(Path(args.corpus), work / "corpus", args.pages)
    result["corpus"] = {k: v for k, v in corpus.items() if k != "list"}
    gpu_dir = work / "data-gpu"
    rows = [run_ingest(work / "corpus", gpu_dir, args.gpu_device, corpus["pages"])]
    result["ingestion"] = {"rows": rows}
    save()
    cpu_pages = subset(corpus["list"], work / "corpus-cpu", args.cpu_pages)
    rows.append(run_ingest(work / "corpus-cpu", work / "data-cpu", "cpu", cpu_pages))
    g, c = rows[0].get("pages_per_s_job"), rows[1].get("pages_per_s_job")
    result["ingestion"]["gpu_over_cpu_pages_per_s"] = round(g / c, 2) if g and c else None
    # The sample policies too, so the questions have their answers among the corpus.
    rows.append(run_ingest(_ROOT / "data" / "samples", gpu_dir, args.gpu_device, 0))
    save()
    return gpu_dir


def answers(common, data_dir: Path, device: str, result: dict, save) -> None:
    from retrieval.search import Searcher

    settings = Settings(data_dir=data_dir, embedding_device=device,
                        llm_answer_format="inline", llm_temperature=0.0, llm_answer_tokens=common.MAX_TOKENS)
    llm = common.BenchClient(settings)
    url = llm.api_base + "/chat/completions"
    http = httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0),
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    who = Principal(user="bench", is_admin=True)
    with Workspace(settings) as ws:
        searcher = Searcher.from_workspace(ws)
        search_s: dict[str, float] = {}

        def ask(question: str, tag: str):
            def retrieve(q: str):
                t = time.perf_counter()
                found = searcher.search(q, who, [COLLECTION], k=K).passages
                search_s[tag] = time.perf_counter() - t
                return common.with_nonce(found, tag)

            answerer = Answerer(settings, llm, retrieve, rewrite_with_llm=False, structured=False,
                                max_tokens=common.MAX_TOKENS)
            t0 = time.perf_counter()
            first = None
            for event in answerer.stream_answer(question):
                if event.type == "delta" and first is None:
                    first = time.perf_counter() - t0
            with llm._lock:
                body = next((b for b in reversed(llm.bodies) if tag.encode() in b), None)
            return first, time.perf_counter() - t0, body

        ask(QUESTIONS[0], common.nonce())  # warm-up: CUDA kernels, tokenizer caches
        rows = []
        for i in range(TRIALS):
            tag = common.nonce()
            d_first, d_total, body = ask(QUESTIONS[i % len(QUESTIONS)], tag)
            r_first, r_total, _ = common.raw_ttft(http, url, body.replace(tag.encode(), common.nonce().encode()))
            rows.append({"question": QUESTIONS[i % len(QUESTIONS)], "docent_ttft_s": d_first, "search_s": round(search_s[tag], 4),
                         "raw_ttft_s": r_first, "prompt_tokens": llm.count_tokens(json.loads(body)["messages"])})
        d = sorted(r["docent_ttft_s"] for r in rows)
        r_ = sorted(r["raw_ttft_s"] for r in rows)
        med_d, med_r = d[len(d) // 2], r_[len(r_) // 2]
        result["single_with_retrieval"] = {
            "k": K, "rows": rows, "docent_ttft_median_s": round(med_d, 4), "raw_ttft_median_s": round(med_r, 4),
            "overhead_ms_median": round((med_d - med_r) * 1000, 1),
            "search_median_s": round(sorted(r["search_s"] for r in rows)[len(rows) // 2], 4),
            "target": "docent <= raw + 150 ms at ~8k tokens", "meets_target": (med_d - med_r) <= 0.150}
        save()

        tags = [common.nonce() for _ in range(USERS)]
        res: dict[int, tuple] = {}
        errors: list[str] = []

        def user(i: int) -> None:
            try:
                res[i] = ask(QUESTIONS[i % len(QUESTIONS)], tags[i])
            except Exception as exc:
                errors.append(f"[{i}] {type(exc).__name__}: {exc} @ {traceback.format_exc()[-600:]}")

        threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        d_wall = time.perf_counter() - t0
        raw_res: dict[int, tuple] = {}
        raw_errors: list[str] = []

        def raw_user(i: int) -> None:
            try:
                raw_res[i] = common.raw_ttft(http, url, res[i][2].replace(tags[i].encode(), common.nonce().encode()))
            except Exception as exc:
                raw_errors.append(f"raw[{i}] {type(exc).__name__}: {exc}"[:300])

        time.sleep(1.0)
        threads = [threading.Thread(target=raw_user, args=(i,)) for i in sorted(res) if res[i][2] is not None]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r_wall = time.perf_counter() - t0
        d_ttft = [v[0] for v in res.values() if v[0] is not None]
        r_ttft = [v[0] for v in raw_res.values() if v[0] is not None]
        d95, r95 = common.pct(d_ttft, 0.95), common.pct(r_ttft, 0.95)
        result["concurrent_32_with_retrieval"] = {
            "users": USERS, "docent": {**common.summary_stats(d_ttft), "wall_s": round(d_wall, 3), "errors": len(errors),
                                       "search_median_s": common.pct(list(search_s.values()), 0.5)},
            "raw": {**common.summary_stats(r_ttft), "wall_s": round(r_wall, 3), "errors": len(raw_errors)},
            "p95_ratio": round(d95 / r95, 3) if d95 and r95 else None,
            "target": "docent p95 <= 1.3 x raw p95, 0 errors",
            "meets_target": bool(d95 and r95 and d95 / r95 <= 1.3 and not errors),
            "error_samples": (errors + raw_errors)[:3]}
        save()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="folder of PDFs to build the corpus from")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--cpu-pages", type=int, default=600)
    ap.add_argument("--skip-answers", action="store_true")
    ap.add_argument("--gpu-device", default="cuda", help="the accelerator's torch device (cpu to rehearse)")
    args = ap.parse_args()
    out_dir = Path(os.environ.get("DOCENT_BENCH_OUT") or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "docent_gpu_path.json"
    result: dict = {"method": __doc__.split("Method:", 1)[1].split("Writes", 1)[0].strip()}
    t_start = time.perf_counter()

    def save() -> None:
        result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        out_file.write_text(json.dumps(result, indent=1, default=str))

    common = _common()
    work = Path(tempfile.mkdtemp(prefix="docent-gpu-"))
    try:
        data_dir = ingestion(args, work, result, save)
        print("[ingestion]", json.dumps(result["ingestion"])[:1500], flush=True)
        if not args.skip_answers:
            answers(common, data_dir, args.gpu_device, result, save)
            shown = {k: result.get(k) for k in ("single_with_retrieval", "concurrent_32_with_retrieval")}
            print("[answers]", json.dumps(shown)[:3000], flush=True)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc()[-2000:]
        print(result["trace"], flush=True)
    save()
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out_file}", flush=True)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
