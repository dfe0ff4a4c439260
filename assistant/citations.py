"""Citation marks in model output: parse, validate against the context, split into claims.

Small models write citations in many shapes ("[1]", "[1, 2]", "[1][2]", "【1】", "[Passage 2]",
"[1-3]"), sometimes with numbers that were never in their context. Everything is rewritten to
one canonical form, "[1][2]", and numbers outside the context are removed and reported.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from assistant import lexical

_WORD = r"(?:passages?|sources?|docs?|documents?|refs?|sections?|段落|文档|来源)"
_ID = rf"(?:{_WORD}\s*#?\s*)?\d{{1,4}}"
_SEP = r"\s*(?:[,，、;；]|and|&|-|–|~)\s*"
MARKER_RE = re.compile(rf"[\[【［]\s*({_ID}(?:{_SEP}{_ID})*)\s*[\]】］]", re.I)
_OPENERS = "[【［"
_CLOSERS = "]】］"
_MAX_RANGE = 10
_LIST_PREFIX = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)、])\s+")


def parse_ids(inner: str) -> list[int]:
    """Numbers inside one mark, in order, ranges ("1-3") expanded, duplicates dropped."""
    ids: list[int] = []
    tokens = re.findall(r"\d{1,4}|[-–~]", inner)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.isdigit():
            if i + 2 < len(tokens) and tokens[i + 1] in "-–~" and tokens[i + 2].isdigit():
                lo, hi = int(tok), int(tokens[i + 2])
                span = range(lo, hi + 1) if 0 <= hi - lo <= _MAX_RANGE else (lo, hi)
                ids.extend(span)
                i += 3
                continue
            ids.append(int(tok))
        i += 1
    return list(dict.fromkeys(ids))


def render_marks(ids: Iterable[int]) -> str:
    return "".join(f"[{n}]" for n in ids)


@dataclass
class Rewritten:
    text: str
    removed: list[int] = field(default_factory=list)


def rewrite_marks(text: str, valid: Collection[int]) -> Rewritten:
    """Canonicalise every mark; drop ids not in ``valid`` (and a mark left empty, with the
    space before it, so "word [9]." becomes "word.")."""
    removed: list[int] = []
    out: list[str] = []
    pos = 0
    for m in MARKER_RE.finditer(text):
        ids = parse_ids(m.group(1))
        keep = [n for n in ids if n in valid]
        removed.extend(n for n in ids if n not in valid)
        before = text[pos : m.start()]
        if keep:
            out.append(before)
            out.append(render_marks(keep))
        else:
            out.append(before.rstrip(" \t"))
        pos = m.end()
    out.append(text[pos:])
    return Rewritten("".join(out), list(dict.fromkeys(removed)))


class StreamingMarkFilter:
    """Applies :func:`rewrite_marks` to a token stream, so what the user sees while the answer
    streams already matches the validated text: a possibly unfinished mark (an opener with no
    closer yet) and trailing whitespace are held back until the next delta decides them."""

    def __init__(self, valid: Collection[int], hold_chars: int = 40):
        self._valid = valid
        self._hold = hold_chars
        self._buf = ""
        self.removed: list[int] = []

    def feed(self, delta: str) -> str:
        self._buf += delta
        cut = len(self._buf)
        opener = max(self._buf.rfind(c) for c in _OPENERS)
        if opener != -1 and not any(c in self._buf[opener:] for c in _CLOSERS):
            if len(self._buf) - opener <= self._hold:
                cut = opener
        while cut > 0 and self._buf[cut - 1] in " \t":
            cut -= 1
        return self._emit(cut)

    def flush(self) -> str:
        return self._emit(len(self._buf))

    def _emit(self, cut: int) -> str:
        ready, self._buf = self._buf[:cut], self._buf[cut:]
        if not ready:
            return ""
        result = rewrite_marks(ready, self._valid)
        self.removed.extend(n for n in result.removed if n not in self.removed)
        return result.text


@dataclass(frozen=True)
class CitedSentence:
    text: str  # the claim, marks and list bullets removed
    ids: tuple[int, ...]
    start: int  # span in the answer text, trailing marks included
    end: int


def cited_sentences(text: str) -> list[CitedSentence]:
    """Split canonical answer text into claims with the ids cited for each.

    Marks right after a sentence's end ("... 2 years. [1] Next") belong to that sentence;
    a leading mark belongs to the sentence it starts only at the very beginning.
    """
    units: list[list] = []  # [start, end, ids]
    for a, b in lexical.sentence_spans(text):
        lead = re.match(rf"(?:\s*{MARKER_RE.pattern})+", text[a:b], re.I)
        if lead and units:
            units[-1][1] = a + lead.end()
            units[-1][2].extend(_ids_in(lead.group(0)))
            a, b = lexical.trim(text, a + lead.end(), b)
            if a >= b:
                continue
        chunk = text[a:b]
        if not claim_text(chunk):
            if units:
                units[-1][1] = b
                units[-1][2].extend(_ids_in(chunk))
            continue
        units.append([a, b, _ids_in(chunk)])
    return [CitedSentence(claim_text(text[a:b]), tuple(dict.fromkeys(ids)), a, b) for a, b, ids in units]


def claim_text(sentence: str) -> str:
    """A sentence without its marks and list bullet, whitespace tidied."""
    claim = _LIST_PREFIX.sub("", MARKER_RE.sub("", sentence))
    claim = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", claim)).strip()
    return claim if any(c.isalnum() for c in claim) else ""  # "[1]." alone is no claim


def _ids_in(text: str) -> list[int]:
    return [n for m in MARKER_RE.finditer(text) for n in parse_ids(m.group(1))]


def strip_marks(text: str) -> str:
    return re.sub(r"\s+([.,;:!?。，])", r"\1", MARKER_RE.sub("", text)).strip()


def render_sentence(text: str, ids: Iterable[int]) -> str:
    """ "Claim." + [1,2] -> "Claim [1][2].": marks go before the closing punctuation."""
    text = text.strip()
    marks = render_marks(ids)
    if not marks:
        return text
    m = re.search(r"[.!?。！？]+[\"'”’」』)]*$", text)
    if m:
        body = text[: m.start()].rstrip()
        sep = "" if body and lexical.is_cjk(body[-1]) else " "
        return f"{body}{sep}{marks}{text[m.start() :]}"
    sep = "" if text and lexical.is_cjk(text[-1]) else " "
    return f"{text}{sep}{marks}"


def join_sentences(sentences: Iterable[str]) -> str:
    """Join rendered sentences: a space between Latin ones, none after Chinese punctuation."""
    out = ""
    for s in sentences:
        s = s.strip()
        if not s:
            continue
        if out:
            prev = out[-1]
            glued = prev in "。！？；" or lexical.is_cjk(prev) or (prev == "]" and lexical.is_cjk(s[0]))
            if not glued:
                out += " "
        out += s
    return out
