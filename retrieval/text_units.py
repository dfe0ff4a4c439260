"""Text helpers shared by the keyword index and the grounding checks, written once.

* ``CJK_CLASS``: the character ranges treated as Chinese/Japanese/Korean (no spaces between words).
* ``stem``: the English Snowball stemmer. A stemmer object keeps per-word scratch state, so one
  shared instance corrupts itself when two threads stem at once (32 concurrent answers on the GPU
  machine crashed with IndexError inside snowballstemmer); each thread gets its own instance.
"""

from __future__ import annotations

import threading

import snowballstemmer

CJK_CLASS = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uac00-\ud7af"  # Hangul syllables
)

_local = threading.local()


def stem(word: str) -> str:
    """English Snowball stem of ``word``, safe to call from any thread."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word)
