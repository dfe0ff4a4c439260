"""The body of ``POST /v1/chat/completions``, checked, and turned into what ``Docent.ask`` takes:
the question (the last user message), the earlier turns and, with ``tools``, the tool round.

Client system messages are not passed on: Docent's own prompt decides how answers are grounded
and cited, and a client's instructions ("answer from your own knowledge") must not undo that.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.tool_answers import ToolRound

MAX_MESSAGES = 64
MAX_TOOLS = 64


class RequestError(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The text of the message; parts other than text (images, audio) are not read."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields Docent reads; others (temperature, n, user, …) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in tools or []:
            fn = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise ValueError("each tool must be {'type': 'function', 'function': {'name': ..., 'parameters': ...}}")
        return tools

    @property
    def answer_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def question_and_history(self) -> tuple[str, list[dict[str, str]]]:
        """The last user message is the question; earlier user and assistant turns become the
        history that follow-up questions are rewritten against. After the question come only
        the turns of a tool round (see ``tool_round``)."""
        last = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=None)
        after = self.messages[last + 1:] if last is not None else self.messages
        if last is None or (after and not self.tools) or any(m.role not in ("assistant", "tool") for m in after):
            raise RequestError("the last message must have role 'user' (or, with tools, be a tool round "
                               "after it: assistant tool_calls and tool results)", "messages")
        question = self.messages[last].text().strip()
        if not question:
            raise RequestError("the last user message has no text", "messages")
        turns = [m for m in self.messages[:last] if m.role in ("user", "assistant")]
        history = [{"role": m.role, "content": m.text()} for m in turns if m.text().strip()]
        return question, history

    def tool_round(self) -> ToolRound | None:
        """The client's tools and the tool turns after the question, or None without tools."""
        if not self.tools:
            return None
        last = max(i for i, m in enumerate(self.messages) if m.role == "user")
        turns = []
        for m in self.messages[last + 1:]:
            turn: dict[str, Any] = {"role": m.role, "content": m.text()}
            if m.role == "assistant" and m.tool_calls:
                turn["tool_calls"] = m.tool_calls
            if m.role == "tool":
                turn["tool_call_id"] = m.tool_call_id
            turns.append(turn)
        return ToolRound(tools=list(self.tools), tool_choice=self.tool_choice, turns=turns)

    def json_schema(self) -> dict | None:
        """The schema of ``response_format: {"type": "json_schema", ...}``, or None for text."""
        fmt = self.response_format
        if fmt is None or fmt.get("type") == "text":
            return None
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise RequestError("response_format.json_schema.schema must be a JSON schema object", "response_format")
            return schema
        if fmt.get("type") == "json_object":
            return {"type": "object"}
        raise RequestError(f"unsupported response_format type {fmt.get('type')!r}", "response_format")


def parse_chat_request(body: Any) -> ChatRequest:
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RequestError(f"{where}: {first['msg']}" if where else first["msg"], where or None) from None
