"""Cheap, language-agnostic text units for grounding checks: content terms and sentence spans.

English words are lower-cased, stop words dropped and stemmed, so "warranties" meets
"warranty". Chinese/Japanese/Korean runs have no spaces and no tokenizer here, so they become
overlapping character bigrams: two characters carry most word meaning, and single characters
("的", "是") would make every Chinese text overlap every other one.
"""

from __future__ import annotations

import re
import unicodedata

from retrieval.text_units import CJK_CLASS, stem

_CJK = CJK_CLASS
_RUN_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+(?:[.,][0-9]+)*", re.UNICODE)
_CJK_RE = re.compile(rf"[{_CJK}]")
_DIGIT_RE = re.compile(r"[0-9]")

# A sentence ends at . ! ? followed by whitespace, right after 。！？；, or at a line break;
# closing quotes/brackets stay with the sentence they close.
_SENTENCE_END = re.compile(r"(?:[.!?](?=\s)|[。！？；!?](?![.!?])|\n)[\"'”’）)」』]*\s*")

_STOP_WORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have
    he her hers him his how i if in into is it its itself me more most my of on
    or our ours she should so such than that the their theirs them then there these they
    this those to too up us was we were what when where which while who whom why will with
    would you your yours also any all each other some only own same very just about above
    after again against before below between both down during further here once out over
    under until off per via""".split()
)
# "no", "nor", "not", "never" are not stop words: in "Alcohol is not reimbursed" the negation is
# the answer to "Is alcohol reimbursed?" (without it the claim only echoes the question and
# cannot be checked), and "is reimbursed" against a passage saying "is not" must miss a term.


# Chinese particles and interrogatives: a bigram containing one ("司的", "是什") says nothing
# about content, and questions are full of them.
_CJK_FUNCTION_CHARS = frozenset("的了吗呢吧啊么什哪谁")


# Chinese numerals before a measure word ("十五天", "两周", "三月三十一日") become digits, so a
# claim saying "15天" meets a passage saying "十五天" (and the number check sees both).
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_ZH_NUMERAL_RE = re.compile(r"[零〇一二两三四五六七八九十百千万]+(?=[天年月日号个人元次周岁小分秒%％项条倍])")
# Interrogatives carry no content; removed before bigrams so "年假有多少天" is about 年假.
_ZH_QUESTION_WORDS_RE = re.compile(r"多少|几|什么|怎么|如何|哪些|哪个")


def _zh_number(run: str) -> str:
    total = section = digit = 0
    for ch in run:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
        elif ch == "万":
            total += (section + digit) * 10000
            section = digit = 0
        else:
            section += (digit or 1) * _ZH_UNITS[ch]
            digit = 0
    return str(total + section + digit)


def zh_numerals_to_digits(text: str) -> str:
    """"十五天" -> "15天": Chinese numerals before a measure word written as digits."""
    return _ZH_NUMERAL_RE.sub(lambda m: _zh_number(m.group(0)), text)


def _normalise(text: str) -> str:
    # NFKC folds full-width letters/digits (common in Chinese text) into their ASCII forms.
    text = zh_numerals_to_digits(unicodedata.normalize("NFKC", text).lower())
    return _ZH_QUESTION_WORDS_RE.sub(" ", text)


def terms(text: str) -> list[str]:
    """Content terms of ``text`` in order: stemmed non-stop words, numbers, CJK bigrams."""
    out: list[str] = []
    after_number = -1
    for m in _RUN_RE.finditer(_normalise(text)):
        run = m.group(0)
        if _CJK_RE.match(run):
            # The measure word after a figure ("15天带薪" -> "天") is a term of its own, as it is
            # where the run ends there ("两天。"): "年假有多少天" must meet "十五天带薪年假".
            if m.start() == after_number and len(run) > 1 and run[0] not in _CJK_FUNCTION_CHARS:
                out.append(run[0])
            if len(run) == 1:
                if run not in _CJK_FUNCTION_CHARS:
                    out.append(run)
            else:
                out.extend(
                    bigram
                    for bigram in (run[i : i + 2] for i in range(len(run) - 1))
                    if not (_CJK_FUNCTION_CHARS & set(bigram))
                )
        elif run not in _STOP_WORDS:
            out.append(run if _DIGIT_RE.search(run) else stem(run))
        after_number = m.end() if _DIGIT_RE.fullmatch(run[-1:]) else -1
    return out


def term_set(text: str) -> frozenset[str]:
    return frozenset(terms(text))


def numbers(text: str) -> frozenset[str]:
    """Numeric tokens ("30", "2.5"): a claim's number absent from its source is a red flag."""
    return frozenset(t for t in _RUN_RE.findall(_normalise(text)) if _DIGIT_RE.search(t))


def is_cjk(text: str) -> bool:
    """True when most letters of ``text`` are CJK (decides the user-facing language)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    return sum(1 for c in letters if _CJK_RE.match(c)) * 2 >= len(letters)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as offsets into ``text``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.end() > pos:
            spans.append((pos, m.end()))
            pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return [s for s in (trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
