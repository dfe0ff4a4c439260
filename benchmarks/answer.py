"""Answer and summary speed against whatever server DOCENT_LLM_BASE_URL points at.

    DOCENT_LLM_BASE_URL=http://host:8000/v1 .venv/bin/python benchmarks/answer.py [--context-tokens N]

Without DOCENT_LLM_BASE_URL the embedded local model is started (CPU fallback), so the same
script measures llama.cpp here and vLLM on a GPU. It drives Docent's own Answerer and
summarizer (not a copy of their logic) over passages built from the sample documents, and
prints prompt tokens, output tokens, time to first token, total time and tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.answer_models import SourceSection  # noqa: E402
from assistant.answerer import Answerer  # noqa: E402
from assistant.prompts import answer_messages  # noqa: E402
from assistant.service import open_llm  # noqa: E402
from assistant.summarizer import stream_summary  # noqa: E402
from benchmarks.record import save  # noqa: E402
from ingest.parse import parse_file  # noqa: E402
from retrieval.models import Passage  # noqa: E402
from retrieval.settings import Settings  # noqa: E402

SAMPLES = _HERE.parent / "data" / "samples"


def sample_sections() -> list[SourceSection]:
    sections = []
    for path in sorted(SAMPLES.glob("*.pdf")) + sorted(SAMPLES.glob("*.docx")):
        doc = parse_file(path, 50)
        for b in doc.blocks:
            text = doc.text[b.start:b.end].strip()
            if len(text) > 40:
                label = f"{doc.title}, p. {b.page}" if b.page else f"{doc.title} > {' > '.join(b.heading_path)}"
                sections.append(SourceSection(label=label, page=b.page, heading_path=list(b.heading_path),
                                              start=b.start, end=b.end, text=text))
    return sections


def passages_for(sections: list[SourceSection], llm, target_tokens: int) -> list[Passage]:
    """Passages (repeating the samples if needed) adding up to about ``target_tokens``."""
    passages, tokens, i = [], 0, 0
    while tokens < target_tokens:
        s = sections[i % len(sections)]
        passages.append(Passage(chunk_ids=[f"c{i}"], document_id=f"d{i}", collection="bench", path=f"/bench/{i}",
                                title=s.label, text=s.text, start=s.start, end=s.end, page=s.page,
                                heading_path=s.heading_path, score=1.0 / (i + 1)))
        tokens += llm.count_tokens(s.text) + 20
        i += 1
    return passages


def time_answer(settings, llm, passages, question: str) -> dict:
    answerer = Answerer(settings, llm, lambda q: passages, rewrite_with_llm=False)
    t0 = time.perf_counter()
    first = None
    final = None
    for event in answerer.stream_answer(question):
        if event.type == "delta" and first is None:
            first = time.perf_counter() - t0
        elif event.type == "final":
            final = event.answer
    total = time.perf_counter() - t0
    prompt_tokens = llm.count_tokens(answer_messages(question, final.passages) if final.passages else question)
    out_tokens = llm.count_tokens(final.answer) if final.answer else 0
    return {"kind": "answer", "mode": final.mode, "prompt_tokens": prompt_tokens, "output_tokens": out_tokens,
            "ttft_s": round(first if first is not None else total, 3), "total_s": round(total, 3),
            "tokens_per_s": round(out_tokens / max(total - (first or 0), 1e-6), 1),
            "citations": len(final.citations), "server_ttft_ms": final.timings.get("ttft_ms")}


def time_summary(llm, sections, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    first = None
    final = None
    for event in stream_summary(sections, llm, max_tokens=max_tokens):
        if event.type == "delta" and first is None:
            first = time.perf_counter() - t0
        elif event.type == "final":
            final = event.summary
    total = time.perf_counter() - t0
    out_tokens = llm.count_tokens(final.text)
    return {"kind": "summary", "path": final.path, "prompt_tokens": final.prompt_tokens, "output_tokens": out_tokens,
            "ttft_s": round(first if first is not None else total, 3), "total_s": round(total, 3),
            "tokens_per_s": round(out_tokens / max(total - (first or 0), 1e-6), 1), "llm_calls": final.llm_calls,
            "citations": len(final.citations)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--context-tokens", type=int, default=1500, help="passage tokens in the RAG prompt")
    ap.add_argument("--summary-tokens", type=int, default=256, help="max output tokens of the summary")
    ap.add_argument("--question", default="What is the daily meal allowance in Shanghai, and who approves trips?")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = Settings()
    sections = sample_sections()
    with open_llm(settings, quiet=False) as choice:
        if choice.client is None:
            sys.exit(f"no language model: {choice.notice}")
        llm = choice.client
        info = llm.info()
        results = [time_answer(settings, llm, passages_for(sections, llm, args.context_tokens), args.question),
                   time_summary(llm, sections, args.summary_tokens)]
    header = {"server": info.kind, "model": info.model, "max_model_len": info.max_model_len, "source": choice.source}
    saved = save("answer", {**header, "results": results})
    print(f"saved {saved}", file=sys.stderr)
    if args.json:
        print(json.dumps({**header, "results": results}))
        return
    print(f"server: {info.kind} {info.model} (context {info.max_model_len}, {choice.source})")
    for r in results:
        print(f"{r['kind']:<8} prompt {r['prompt_tokens']:>6} tok  output {r['output_tokens']:>5} tok  "
              f"TTFT {r['ttft_s']:7.2f} s  total {r['total_s']:7.2f} s  {r['tokens_per_s']:6.1f} tok/s  "
              f"({r.get('mode') or r.get('path')}, {r['citations']} citations)")


if __name__ == "__main__":
    main()
