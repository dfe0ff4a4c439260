"""Whole-document summaries with section citations: one pass when the document fits, map-reduce
when it does not.

The choice uses the real token count of the full one-pass prompt (the server's tokenizer via
``llm.count_tokens``) against ``llm.context_budget()``: no characters-per-token guess decides
it. Map-reduce numbers sections globally, summarises batches concurrently (vLLM batches the
requests), keeps each partial's [n] marks pointing at global section numbers, and merges the
partials in a final pass that is streamed. Marks are checked against the section set at every
step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant import citations as cit
from assistant import lexical
from assistant.answer_models import SectionCitation, SourceSection, Summary, SummaryEvent
from assistant.grounding import repair_citations
from assistant.prompts import reduce_messages, section_block, summary_messages
from assistant.support import SpanMatch, SupportChecker

if TYPE_CHECKING:
    from assistant.llm_client import LLMClient

log = logging.getLogger(__name__)
T = TypeVar("T")

_BLOCK_OVERHEAD = 4  # tokens between blocks that counting a block alone misses


@dataclass(frozen=True)
class _Unit:
    n: int  # global section number; a split section's pieces share it
    label: str
    text: str
    tokens: int


def summarize(
    sections: Sequence[SourceSection],
    llm: LLMClient,
    *,
    max_tokens: int = 512,
    map_tokens: int = 256,
    concurrency: int = 8,
    checker: SupportChecker | None = None,
) -> Summary:
    final = None
    for event in stream_summary(
        sections, llm, max_tokens=max_tokens, map_tokens=map_tokens, concurrency=concurrency, checker=checker
    ):
        if event.type == "final":
            final = event.summary
    assert final is not None
    return final


def stream_summary(
    sections: Sequence[SourceSection],
    llm: LLMClient,
    *,
    max_tokens: int = 512,
    map_tokens: int = 256,
    concurrency: int = 8,
    checker: SupportChecker | None = None,
) -> Iterator[SummaryEvent]:
    """Progress (``stage``), the final pass's text (``delta``), then the validated ``final``."""
    t0 = time.perf_counter()
    checker = checker or SupportChecker()
    numbered = [(n, s) for n, s in enumerate((s for s in sections if s.text.strip()), start=1)]
    if not numbered:
        raise ValueError("The document has no text to summarise.")
    by_n = {n: s for n, s in numbered}
    triples = [(n, s.label, s.text) for n, s in numbered]

    budget = llm.context_budget(reserve_answer=max_tokens)
    prompt_tokens = llm.count_tokens(summary_messages(triples))
    timings: dict[str, float] = {}
    calls = 1

    if prompt_tokens <= budget:
        path = "one-pass"
        final_messages = summary_messages(triples)
    else:
        path = "map-reduce"
        batches = _batches(triples, llm, budget)
        if len(batches) == 1:  # only possible when splitting changed the overhead; rare
            final_messages = summary_messages([(u.n, u.label, u.text) for u in batches[0]])
        else:
            yield SummaryEvent(type="stage", text=f"Summarising {len(batches)} parts of the document…")
            t_map = time.perf_counter()
            partials = _run(_map(batches, llm, map_tokens, concurrency, by_n, checker))
            calls += len(batches)
            timings["map_ms"] = (time.perf_counter() - t_map) * 1000.0
            partials, merges = _reduce_until_fits(partials, llm, budget, map_tokens, concurrency, set(by_n))
            calls += merges
            yield SummaryEvent(type="stage", text="Merging the parts…")
            final_messages = reduce_messages(partials)

    marks = cit.StreamingMarkFilter(set(by_n))
    raw: list[str] = []
    for delta in llm.stream(final_messages, max_tokens=max_tokens):
        raw.append(delta)
        if "ttft_ms" not in timings:
            timings["ttft_ms"] = (time.perf_counter() - t0) * 1000.0
        text = marks.feed(delta)
        if text:
            yield SummaryEvent(type="delta", text=text)
    tail = marks.flush()
    if tail:
        yield SummaryEvent(type="delta", text=tail)

    summary = _validated("".join(raw), by_n, checker)
    timings["total_ms"] = (time.perf_counter() - t0) * 1000.0
    yield SummaryEvent(
        type="final",
        summary=summary.model_copy(
            update={
                "path": path,
                "prompt_tokens": prompt_tokens,
                "budget_tokens": budget,
                "llm_calls": calls,
                "timings": {k: round(v, 1) for k, v in timings.items()},
            }
        ),
    )


# --- planning -----------------------------------------------------------------------------


def _batches(triples: list[tuple[int, str, str]], llm: LLMClient, budget: int) -> list[list[_Unit]]:
    """Greedy batches of whole sections (split only when one alone exceeds the budget)."""
    base = llm.count_tokens(summary_messages([], partial=True))
    room = budget - base
    if room < 64:
        raise ValueError(f"The model's context ({budget} prompt tokens) is too small to summarise in parts.")
    units: list[_Unit] = []
    for n, label, text in triples:
        tokens = llm.count_tokens(section_block(n, label, text)) + _BLOCK_OVERHEAD
        if tokens <= room:
            units.append(_Unit(n, label, text, tokens))
        else:
            units.extend(_split(n, label, text, tokens, room, llm))
    batches: list[list[_Unit]] = []
    size = 0
    for unit in units:
        if batches and size + unit.tokens <= room:
            batches[-1].append(unit)
            size += unit.tokens
        else:
            batches.append([unit])
            size = unit.tokens
    return batches


def _split(n: int, label: str, text: str, tokens: int, room: int, llm: LLMClient) -> list[_Unit]:
    """Cut an oversized section at sentence ends into pieces that fit; each piece is counted."""
    target = max(200, int(len(text) / tokens * room * 0.85))  # characters per piece, first guess
    pieces: list[str] = []
    current = ""
    for a, b in lexical.sentence_spans(text):
        sentence = text[a:b]
        while len(sentence) > target:  # one over-long "sentence" (a table, a run-on list)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:target])
            sentence = sentence[target:]
        if current and len(current) + 1 + len(sentence) > target:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    units: list[_Unit] = []
    for k, piece in enumerate(pieces, start=1):
        part_label = f"{label} (part {k}/{len(pieces)})"
        count = llm.count_tokens(section_block(n, part_label, piece)) + _BLOCK_OVERHEAD
        if count > room:  # the guess was off for this piece: halve it
            half = len(piece) // 2
            units.extend(_split(n, label, piece[:half], count // 2 + 1, room, llm))
            units.extend(_split(n, label, piece[half:], count // 2 + 1, room, llm))
        else:
            units.append(_Unit(n, part_label, piece, count))
    return units


# --- map and reduce -----------------------------------------------------------------------


async def _map(
    batches: list[list[_Unit]],
    llm: LLMClient,
    map_tokens: int,
    concurrency: int,
    by_n: dict[int, SourceSection],
    checker: SupportChecker,
) -> list[str]:
    limit = asyncio.Semaphore(concurrency)

    async def one(batch: list[_Unit]) -> str:
        async with limit:
            raw = await llm.acomplete(
                summary_messages([(u.n, u.label, u.text) for u in batch], partial=True), max_tokens=map_tokens
            )
        ids = {u.n for u in batch}
        text = cit.rewrite_marks(raw, ids).text.strip()
        # A partial without marks would lose its provenance in the merge: attribute here,
        # where the candidate sections are few.
        text, _ = repair_citations(text, {n: by_n[n].text for n in ids}, checker)
        return text

    return list(await asyncio.gather(*(one(b) for b in batches)))


def _reduce_until_fits(
    partials: list[str], llm: LLMClient, budget: int, map_tokens: int, concurrency: int, valid: set[int]
) -> tuple[list[str], int]:
    """Merge partials in groups until one final merge prompt fits. Returns (partials, calls)."""
    calls = 0
    while llm.count_tokens(reduce_messages(partials)) > budget:
        base = llm.count_tokens(reduce_messages([]))
        groups: list[list[str]] = []
        size = 0
        for p in partials:
            cost = llm.count_tokens(p) + _BLOCK_OVERHEAD * 3
            if groups and size + cost <= budget - base:
                groups[-1].append(p)
                size += cost
            else:
                groups.append([p])
                size = cost
        if len(groups) == len(partials):
            raise ValueError(
                f"The model's context ({budget} prompt tokens) cannot hold two partial summaries; "
                "lower map_tokens or use a model with a longer context."
            )
        partials = _run(_merge(groups, llm, map_tokens, concurrency, valid))
        calls += len(groups)
    return partials, calls


async def _merge(
    groups: list[list[str]], llm: LLMClient, max_tokens: int, concurrency: int, valid: set[int]
) -> list[str]:
    limit = asyncio.Semaphore(concurrency)

    async def one(group: list[str]) -> str:
        if len(group) == 1:
            return group[0]
        async with limit:
            raw = await llm.acomplete(reduce_messages(group), max_tokens=max_tokens)
        return cit.rewrite_marks(raw, valid).text.strip()

    return list(await asyncio.gather(*(one(g) for g in groups)))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- validation ---------------------------------------------------------------------------


def _validated(raw: str, by_n: dict[int, SourceSection], checker: SupportChecker) -> Summary:
    rewritten = cit.rewrite_marks(raw, set(by_n))
    text, _ = repair_citations(rewritten.text.strip(), {n: s.text for n, s in by_n.items()}, checker)
    best: dict[int, tuple[SpanMatch, bool]] = {}
    for sentence in cit.cited_sentences(text):
        if not sentence.ids:
            continue
        result = checker.check(sentence.text, {n: by_n[n].text for n in sentence.ids})
        for n in sentence.ids:
            span, ok = result.spans[n], checker.citation_supported(result, n)
            prev = best.get(n)
            if prev is None or (ok, span.score) > (prev[1], prev[0].score):
                best[n] = (span, ok or (prev[1] if prev else False))
    citations = [
        SectionCitation(
            n=n,
            label=by_n[n].label,
            page=by_n[n].page,
            heading_path=list(by_n[n].heading_path),
            quote=by_n[n].text[span.start : span.end],
            start=by_n[n].start + span.start,
            end=by_n[n].start + span.end,
            supported=ok,
        )
        for n, (span, ok) in sorted(best.items())
    ]
    return Summary(
        text=text,
        citations=citations,
        sections_used=sorted(best),
        path="one-pass",  # set by the caller
        prompt_tokens=0,
        budget_tokens=0,
        removed_citations=rewritten.removed,
    )
