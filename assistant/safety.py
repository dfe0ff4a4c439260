"""Content safety on the way in (questions) and out (answers): a policy an operator configures.

The built-in policy is deliberately plain and predictable: a maximum question size and a list
of blocked terms or regular expressions (``DOCENT_BLOCKED_PATTERNS``, a JSON list):

* ``"salary of"``        a term: matched case-insensitively, as whole words where it begins or
                         ends with a letter or digit (so ``"pin"`` does not block ``"spinning"``);
* ``"re:\\b\\d{3}-\\d{2}-\\d{4}\\b"``  a regular expression (Python syntax, case-insensitive).

Text is NFKC-normalised before matching, so full-width or ligature spellings do not slip past.
A classifier (a moderation model, a vendor API) plugs in through :class:`Classifier` and
``DOCENT_SAFETY_CLASSIFIER=package.module:factory`` (``factory(settings) -> Classifier``). If it
fails, the policy refuses (fail closed) unless built with ``fail_closed=False``.

Refusals carry a message for the user and a rule label for metrics and the audit log; neither
repeats the user's text.
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

from retrieval.settings import Settings

log = logging.getLogger(__name__)

Direction = Literal["input", "output"]


class SafetyConfigError(ValueError):
    """A blocked pattern or the classifier setting cannot be used; names which one."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str | None = None  # bounded label: max_chars, blocked_pattern, classifier, classifier_error
    message: str = ""  # for the user
    detail: str = ""  # for operators (audit, logs): which rule, never the user's text

    @classmethod
    def ok(cls) -> "Verdict":
        return cls(True)


@dataclass(frozen=True)
class ClassifierResult:
    flagged: bool
    category: str = ""
    score: float = 0.0


class Classifier(Protocol):
    """The hook for a content classifier. ``classify`` is called once per question and once
    per final answer (not per streamed token); it should answer in well under a second."""

    name: str

    def classify(self, text: str, direction: Direction) -> ClassifierResult: ...


@dataclass(frozen=True)
class _Rule:
    number: int
    regex: re.Pattern[str]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def compile_pattern(number: int, spec: str) -> _Rule:
    if not isinstance(spec, str) or not spec.strip():
        raise SafetyConfigError(f"blocked pattern #{number} is empty")
    if spec.startswith("re:"):
        source = spec[3:]
        try:
            return _Rule(number, re.compile(source, re.IGNORECASE))
        except re.error as exc:
            raise SafetyConfigError(f"blocked pattern #{number} ({spec!r}) is not a valid regular expression: {exc}") from None
    term = normalise(spec.strip())
    # Whole words only where the term has word characters at its edges; Chinese and Japanese
    # have no spaces between words, and a term written with them must match inside a sentence.
    head = r"(?<![A-Za-z0-9_])" if re.match(r"[A-Za-z0-9_]", term[0]) else ""
    tail = r"(?![A-Za-z0-9_])" if re.match(r"[A-Za-z0-9_]", term[-1]) else ""
    return _Rule(number, re.compile(head + re.escape(term) + tail, re.IGNORECASE))


def load_classifier(spec: str, settings: Settings) -> Classifier:
    """``package.module:factory`` -> ``factory(settings)``."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SafetyConfigError(f"DOCENT_SAFETY_CLASSIFIER must be 'package.module:factory', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SafetyConfigError(f"safety classifier {spec!r} cannot be loaded: {exc}") from exc
    classifier = factory(settings)
    if not callable(getattr(classifier, "classify", None)):
        raise SafetyConfigError(f"safety classifier {spec!r} returned {type(classifier).__name__}, which has no classify()")
    return classifier


INPUT_BLOCKED = ("This question can't be answered: it contains wording that this organisation's content "
                 "policy blocks. Please rephrase it, or ask an administrator if you think this is a mistake.")
OUTPUT_BLOCKED = ("The answer was withheld: it contained wording that this organisation's content policy "
                  "blocks. Please rephrase the question, or ask an administrator.")
CLASSIFIER_DOWN = ("The content-safety check is not available right now, so this cannot be answered. "
                   "Please try again later.")


class SafetyPolicy:
    def __init__(self, patterns: Sequence[str] = (), max_input_chars: int = 4000,
                 classifier: Classifier | None = None, fail_closed: bool = True):
        if max_input_chars < 1:
            raise SafetyConfigError(f"max_question_chars must be at least 1, got {max_input_chars}")
        self.rules = [compile_pattern(i, p) for i, p in enumerate(patterns, 1)]
        self.max_input_chars = max_input_chars
        self.classifier = classifier
        self.fail_closed = fail_closed

    @classmethod
    def from_settings(cls, settings: Settings, classifier: Classifier | None = None) -> "SafetyPolicy":
        spec = getattr(settings, "safety_classifier", None)
        if classifier is None and spec:
            classifier = load_classifier(spec, settings)
        return cls(settings.blocked_patterns, settings.max_question_chars, classifier)

    # --- checks -----------------------------------------------------------------------------
    def check_input(self, text: str) -> Verdict:
        size = len(text or "")
        if size > self.max_input_chars:
            return Verdict(False, "max_chars",
                           f"Your question is {size:,} characters long; the limit is {self.max_input_chars:,}. "
                           "Please shorten it.", f"{size} chars > {self.max_input_chars}")
        return self._check(text, "input", use_classifier=True)

    def check_output(self, text: str, final: bool = True) -> Verdict:
        """``final=False`` for text still streaming: patterns only (cheap enough per delta);
        the classifier sees the final answer once."""
        return self._check(text, "output", use_classifier=final)

    def _check(self, text: str, direction: Direction, use_classifier: bool) -> Verdict:
        blocked = INPUT_BLOCKED if direction == "input" else OUTPUT_BLOCKED
        normal = normalise(text or "")
        for rule in self.rules:
            if rule.regex.search(normal):
                return Verdict(False, "blocked_pattern", blocked, f"blocked pattern #{rule.number}")
        if use_classifier and self.classifier is not None:
            try:
                result = self.classifier.classify(text, direction)
            except Exception as exc:
                log.error("safety classifier %s failed: %s", getattr(self.classifier, "name", "?"), type(exc).__name__)
                if self.fail_closed:
                    return Verdict(False, "classifier_error", CLASSIFIER_DOWN,
                                   f"classifier {getattr(self.classifier, 'name', '?')} failed: {type(exc).__name__}")
                return Verdict.ok()
            if result.flagged:
                what = f" ({result.category})" if result.category else ""
                message = (f"This question can't be answered: the content-safety check flagged it{what}."
                           if direction == "input" else
                           f"The answer was withheld: the content-safety check flagged it{what}.")
                return Verdict(False, "classifier", message,
                               f"classifier {getattr(self.classifier, 'name', '?')}: {result.category} {result.score:.2f}")
        return Verdict.ok()
