"""Token counts guessed from text, for servers that cannot count (no ``/tokenize``) and for the
API's usage figures. Generous on purpose: a guess that is too high loses a passage; one that
is too low overflows the model's context."""

from __future__ import annotations

import math
import re
from typing import Any

from retrieval.text_units import CJK_CLASS

# Full-width forms (，。：) are a token each too.
_CJK = re.compile(f"[{CJK_CLASS}\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """One token per CJK character (Qwen averages ~1.4 characters), one per 3.5 other
    characters (~4 in English)."""
    cjk = len(_CJK.findall(text))
    return math.ceil(cjk + (len(text) - cjk) / 3.5)


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    # ~4 tokens of chat-template framing per message (<|im_start|>role\n … <|im_end|>\n), 3 to open the answer.
    return sum(estimate_tokens(str(m.get("content", ""))) + 4 for m in messages) + 3
