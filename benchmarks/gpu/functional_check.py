"""Functional run with real weights: Docent's own answer path against a live server.

Ingest is done beforehand (functional_run.sh runs ``docent ingest data/samples``); this
script asks every question in a JSONL file (id, question, answers, answerable) through the
same composition as ``docent ask`` — hybrid search with the caller's access filter, the
Answerer (JSON-schema answers when the server offers them, as vLLM does), the guard — and
checks what a user relies on:

* an answerable question is answered (mode "generated") and its answer holds a gold string;
* a question the documents cannot answer is refused;
* every citation points at a passage that was given, and its quote is in that passage;
* the model's raw reply is JSON that fits the answer schema (the structured-output path).

Usage:  python benchmarks/gpu/functional_check.py --data-dir DIR --collection Samples \
            [--questions benchmarks/gpu/functional-questions.jsonl] [--out result.json]
The LLM comes from the environment as for the product (DOCENT_LLM_BASE_URL, DOCENT_LLM_MODEL).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_ROOT))

from assistant.answerer import Answerer  # noqa: E402
from assistant.guard import AnswerGuard  # noqa: E402
from assistant.llm_client import LLMClient  # noqa: E402
from retrieval.models import Principal  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.workspace import Workspace  # noqa: E402


class RecordingClient(LLMClient):
    """The product's client, keeping the raw text of the last streamed reply."""

    last_raw = ""
    last_schema: dict | None = None

    def stream(self, messages, max_tokens=None, json_schema=None, temperature=None):
        self.last_raw, self.last_schema = "", json_schema
        for delta in super().stream(messages, max_tokens=max_tokens, json_schema=json_schema, temperature=temperature):
            self.last_raw += delta
            yield delta


def norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split()).replace(",", "")


def fits_schema(raw: str, schema: dict) -> bool:
    """The reply parses and validates against the schema Docent sent (jsonschema, as vLLM's own list has it)."""
    import jsonschema

    try:
        jsonschema.validate(json.loads(raw), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def check_one(item: dict, answer, client: RecordingClient) -> dict:
    by_n = {i + 1: p for i, p in enumerate(answer.passages)}
    bad = [c.n for c in answer.citations
           if c.n not in by_n or norm(c.quote) not in norm(by_n[c.n].text)]
    answered = answer.mode == "generated"
    correct = answered and any(norm(g) in norm(answer.answer) for g in item["answers"])
    row = {"id": item["id"], "answerable": item["answerable"], "mode": answer.mode, "answer": answer.answer[:400],
           "correct": correct if item["answerable"] else answer.mode == "refused",
           "citations": len(answer.citations), "invalid_citations": bad,
           "removed_citations": answer.removed_citations, "ttft_ms": answer.timings.get("ttft_ms"),
           "total_ms": answer.timings.get("total_ms"), "structured": client.last_schema is not None}
    if client.last_schema is not None:
        row["schema_valid"] = fits_schema(client.last_raw, client.last_schema)
    if not row["correct"]:
        row["raw"] = client.last_raw[:600]
    return row


def summarise(rows: list[dict]) -> dict:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    structured = [r for r in rows if r["structured"]]
    cited = sum(r["citations"] for r in rows)
    return {
        "answerable": len(ans), "answered_correct": sum(r["correct"] for r in ans),
        "false_refusals": sum(r["mode"] == "refused" for r in ans),
        "unanswerable": len(una), "refused_when_unanswerable": sum(r["correct"] for r in una),
        "citations": cited, "citations_valid": cited - sum(len(r["invalid_citations"]) for r in rows),
        "answers_with_citations": sum(r["citations"] > 0 for r in ans if r["mode"] == "generated"),
        "structured_replies": len(structured), "schema_valid": sum(r.get("schema_valid", False) for r in structured),
        "ttft_ms_median": sorted(r["ttft_ms"] or 0 for r in rows)[len(rows) // 2] if rows else None,
    }


def run(args: argparse.Namespace) -> dict:
    settings = Settings(data_dir=args.data_dir, embedding_device=args.device)
    items = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    who = Principal(user="functional-check", is_admin=True)
    client = RecordingClient(settings)
    rows = []
    with Workspace(settings) as ws:
        from retrieval.search import Searcher

        searcher = Searcher.from_workspace(ws)
        guard = AnswerGuard.from_settings(settings)
        for item in items:
            retrieve = lambda q: searcher.search(q, who, [args.collection], k=args.k).passages  # noqa: E731
            answerer = Answerer(settings, client, retrieve, fallback_to_extractive=False)
            final = None
            for event in guard.stream(who, [args.collection], item["question"], answerer.stream_answer):
                if event.type == "final":
                    final = event.answer
            rows.append(check_one(item, final, client))
            print(json.dumps(rows[-1], ensure_ascii=False)[:400], flush=True)
    info = client.info()
    return {"server": {"model": settings.llm_model, "base_url": settings.llm_base_url,
                       "max_model_len": getattr(info, "max_model_len", None),
                       "json_schema": getattr(info, "has_json_schema", None)},
            "summary": summarise(rows), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--collection", default="Samples")
    ap.add_argument("--questions", type=Path, default=Path(__file__).with_name("functional-questions.jsonl"))
    ap.add_argument("--device", default="cpu", help="embedding device (cuda on the GPU machine)")
    ap.add_argument("-k", type=int, default=6)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result = run(args)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result["summary"], ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
