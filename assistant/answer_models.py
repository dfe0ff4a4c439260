"""Typed results of the assistant: grounded answers, their citations, and document summaries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from retrieval.models import Passage

# "tool_calls": the model asked to call one of the client's tools (HTTP API only); the answer
# comes in a later request that carries the tools' results.
AnswerMode = Literal["generated", "extractive", "refused", "tool_calls"]
TIMING_KEYS = ("retrieval_ms", "ttft_ms", "total_ms")
# Who refused: no passage retrieved, the prompt did not fit, the model said it is not there,
# no cited sentence passed the support check, the supported ones do not address the question,
# the extractive picker found nothing, or the guard (policy, rate limit) stopped it.
RefusalStage = Literal["retrieval", "context", "model", "support", "coverage", "extractive", "guard"]


class Citation(BaseModel):
    """One cited passage, with the sentence of it that best supports the claims citing it."""

    n: int = Field(description="Passage number as shown to the model (1-based).")
    document_id: str
    title: str
    path: str
    page: int | None = None
    heading_path: list[str] = Field(default_factory=list)
    quote: str
    start: int = Field(description="Offset of the quote in the document's extracted text.")
    end: int
    supported: bool


class SentenceSupport(BaseModel):
    """One sentence of an answer and how well its cited passages back it."""

    text: str
    citations: list[int] = Field(default_factory=list)
    supported: bool
    score: float
    attributed: bool = Field(
        default=False,
        description="Code chose the citation: the model gave none, or one that does not support it.",
    )


class ToolCall(BaseModel):
    """A call of a client's tool, as the model asked for it (OpenAI's ``function`` shape)."""

    id: str
    name: str
    arguments: str = Field(description="The arguments as the JSON text the model wrote.")


class Answer(BaseModel):
    answer: str
    mode: AnswerMode
    citations: list[Citation] = Field(default_factory=list)
    sentences: list[SentenceSupport] = Field(
        default_factory=list,
        description="Every sentence the model wrote; uncited ones are left out of ``answer``.",
    )
    passages: list[Passage] = Field(default_factory=list)
    removed_citations: list[int] = Field(
        default_factory=list, description="Ids the model cited that were not in its context."
    )
    timings: dict[str, float] = Field(default_factory=dict)
    notice: str | None = Field(
        default=None, description="Why the answer is not a normal generated one (e.g. LLM down)."
    )
    refusal_stage: RefusalStage | None = Field(
        default=None,
        description="Which step refused (internal, for evaluation; not in the wire format).",
    )
    tool_calls: list[ToolCall] = Field(default_factory=list, description='Set when mode is "tool_calls".')

    def to_json_dict(self) -> dict:
        """The public wire format (API, audit log); internal detail stays out."""
        return {
            "answer": self.answer,
            "mode": self.mode,
            "citations": [
                c.model_dump(
                    include={
                        "n",
                        "document_id",
                        "title",
                        "path",
                        "page",
                        "heading_path",
                        "quote",
                        "start",
                        "end",
                        "supported",
                    }
                )
                for c in self.citations
            ],
            "passages": [p.model_dump(mode="json") for p in self.passages],
            "timings": {k: round(float(self.timings.get(k, 0.0)), 1) for k in TIMING_KEYS},
        }


class AnswerEvent(BaseModel):
    """One step of a streamed answer.

    ``passages``: retrieval finished (sources can be shown at once); ``delta``: answer text to
    append; ``final``: the validated answer, whose text replaces everything streamed before
    (citations may have been removed or the answer refused after checking).
    """

    type: Literal["passages", "delta", "final"]
    text: str = ""
    passages: list[Passage] = Field(default_factory=list)
    answer: Answer | None = None


def final_answer(events: Iterable[AnswerEvent]) -> Answer:
    """The answer of a whole stream (every answer stream ends with a final event)."""
    answer = None
    for event in events:
        if event.type == "final":
            answer = event.answer
    if answer is None:
        raise RuntimeError("the answer stream ended without a final answer")
    return answer


class SourceSection(BaseModel):
    """One ordered piece of a document to summarise, with the provenance a citation needs."""

    label: str = Field(description='How a reader finds it: "p. 3" or "Intro > Scope".')
    page: int | None = None
    heading_path: list[str] = Field(default_factory=list)
    start: int = Field(default=0, description="Offset in the document's extracted text.")
    end: int = 0
    text: str


class SectionCitation(BaseModel):
    n: int = Field(description="Section number as shown to the model (1-based).")
    label: str
    page: int | None = None
    heading_path: list[str] = Field(default_factory=list)
    quote: str
    start: int
    end: int
    supported: bool


class Summary(BaseModel):
    text: str
    citations: list[SectionCitation] = Field(default_factory=list)
    sections_used: list[int] = Field(default_factory=list, description="Cited section numbers.")
    path: Literal["one-pass", "map-reduce"]
    prompt_tokens: int = Field(description="Counted tokens of the full one-pass prompt (the decision).")
    budget_tokens: int = Field(description="Prompt tokens the server could take.")
    llm_calls: int = 1
    removed_citations: list[int] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")


class SummaryEvent(BaseModel):
    """``stage``: progress line (map-reduce); ``delta``: final-pass text; ``final``: the summary."""

    type: Literal["stage", "delta", "final"]
    text: str = ""
    summary: Summary | None = None
