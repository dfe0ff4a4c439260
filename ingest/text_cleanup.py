"""Character- and line-level clean-up shared by the parsers: ligatures, stray controls,
whitespace runs, hyphenation at line ends, and joining wrapped lines without breaking CJK text.

Deliberately *not* Unicode NFKC: that would rewrite full-width CJK punctuation and
compatibility ideographs, and quotes must match the document the user can open.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
        "\u00ad": None,  # soft hyphen: only marks where a word *may* break
        "\u200b": None,  # zero-width space
        "\ufeff": None,  # BOM / zero-width no-break space
        "\x00": None,
    }
)
# Control characters other than tab/newline carry no text (PDF fonts emit them for glyphs
# without a Unicode mapping).
# Controls, and lone UTF-16 surrogates: a broken ToUnicode map in a valid PDF makes pypdf emit
# them (docling's skipped_1page.pdf has U+DB62), and a str holding one cannot be encoded as
# UTF-8, so the tokenizer rejects it ("TextInputSequence must be str") and hashing fails.
_CONTROLS = re.compile("[\x01-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_HYPHENS = "-\u2010\u2011"
_WORD_TAIL = re.compile(r"(\w+)[" + _HYPHENS + r"]$")
_WORD_HEAD = re.compile(r"^(\w+)")
_COMPOUND = re.compile(r"\b(\w+)-(\w+)\b")


def clean_chars(text: str) -> str:
    """Ligatures to letters, invisible and control characters and lone surrogates removed."""
    return _CONTROLS.sub("", text.translate(_LIGATURES))


def collapse_spaces(line: str) -> str:
    """Runs of horizontal whitespace become one space; ends are trimmed."""
    return _SPACES.sub(" ", line).strip()


def is_cjk(ch: str) -> bool:
    """Scripts written without spaces between words (Han, kana, CJK punctuation, full-width forms).

    Hangul is excluded on purpose: Korean separates words with spaces, so wrapped Korean
    lines are joined with a space like Latin text.
    """
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x20000 <= o <= 0x2FA1F  # extensions B+ and compatibility supplement
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x3000 <= o <= 0x303F  # CJK symbols and punctuation
        or 0x3040 <= o <= 0x30FF  # hiragana, katakana
        or 0xFF00 <= o <= 0xFFEF  # full-width and half-width forms
    )


class HyphenVocabulary:
    """Decides whether a word broken as ``left-`` / ``right`` at a line end keeps its hyphen.

    Typesetters hyphenate plain words ("subop-/timal") and break real compounds at their own
    hyphen ("self-/locking"). Without a dictionary, the document itself is the best witness:
    if the hyphenated compound occurs elsewhere and the closed form does not, keep the hyphen.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        self._compounds: set[str] = set()
        self._words: set[str] = set()
        for text in texts:
            low = text.lower()
            self._compounds.update(f"{a}-{b}" for a, b in _COMPOUND.findall(low))
            self._words.update(re.findall(r"\w+", low))

    def keep_hyphen(self, left: str, right: str) -> bool:
        left, right = left.lower(), right.lower()
        return f"{left}-{right}" in self._compounds and f"{left}{right}" not in self._words


def join_lines(lines: Sequence[str], vocabulary: HyphenVocabulary | None = None) -> str:
    """Join the wrapped lines of one paragraph into a single line.

    A hyphen at a line end followed by a lower-case continuation is a typesetting break and is
    removed (unless ``vocabulary`` says the word is a real compound); a break between two CJK
    characters gets no space; any other break becomes one space.
    """
    out = ""
    for raw in lines:
        line = collapse_spaces(raw)
        if not line:
            continue
        if not out:
            out = line
            continue
        tail = _WORD_TAIL.search(out)
        head = _WORD_HEAD.match(line)
        if tail and head and line[0].islower() and not tail.group(1).isdigit():
            if vocabulary is not None and vocabulary.keep_hyphen(tail.group(1), head.group(1)):
                out = out[:-1] + "-" + line
            else:
                out = out[:-1] + line
        elif is_cjk(out[-1]) and is_cjk(line[0]):
            out += line
        else:
            out += " " + line
    return out


# Titles that authoring tools fill in by themselves, which say nothing about the document.
_PLACEHOLDER_TITLE = re.compile(
    r"^(untitled|untitled (document|spreadsheet|presentation)|(microsoft )?(word|powerpoint) (document|presentation)"
    r"|document\s*\d*|title|slide \d+)$|^microsoft (word|powerpoint)\b"
    r"|\.(docx?|pdf|tex|dvi|rtf|odt|odp|ods|pptx?|xlsx?|indd|qxd|txt|html?)$",
    re.I,
)


def usable_title(raw: object) -> str:
    """A title cleaned up, or "" when it is empty, a tool's placeholder, or mis-decoded bytes."""
    title = collapse_spaces(clean_chars(str(raw))) if raw else ""
    if not title or _PLACEHOLDER_TITLE.search(title) or not re.search(r"[^\W\d_]{3}", title):
        return ""
    # Bytes decoded with the wrong encoding scatter over many scripts; real titles use one or two
    # (Japanese uses up to four: kanji, hiragana, katakana, Latin).
    scripts = set()
    for ch in title:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if not name or unicodedata.category(ch) in ("Co", "Cn"):
                return ""
            scripts.add(name.split()[0])
    return "" if len(scripts) > 4 else title
