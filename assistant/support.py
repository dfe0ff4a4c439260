"""Does a cited passage back the sentence that cites it? A cheap lexical check per claim.

Score = weighted recall of the claim's content terms (stemmed words, numbers, CJK character
bigrams; see ``lexical``) in the cited text: what share of what the claim says is found in
its source. A claim citing several passages is scored on their union. Three adjustments
target what small models actually get wrong:

- numbers weigh double, and a figure the sources do not contain halves the score ("30 days"
  against a passage saying "25 days");
- terms the claim repeats from the question weigh 0.3: every retrieved passage shares the
  question's words (that is why it was retrieved), so finding them proves little; what the
  claim adds to the question is what must be backed;
- topic gate: when the claim repeats two or more question terms, at least a third of them
  must be in the source, else the score is capped at that share. "The parental leave policy
  is 25 days of paid annual leave" restates a true sentence, but about the wrong subject.

``SUPPORT_THRESHOLD`` = 0.55, calibrated on real pairs:
- CMRC2018 (zh), 300 questions, claim = question + its gold answer: against its own paragraph
  91% pass; against the most overlapping other paragraph 4% pass; with a wrong answer
  swapped in, against its own paragraph, 3% pass (0.50 would pass 93/5/5%, 0.60 85/4/2%);
- SciFact (en), 200 annotator-written claims (heavy paraphrase) against their evidence
  abstract 74% pass, against the most overlapping of 400 other abstracts 23% pass;
- the 0.5B model's own answers on the test handbook: copied/near-copied sentences score
  0.8-1.0, its answers about the wrong subject or with invented figures score below 0.3.
The best-matching sentence (or two adjacent sentences) of each cited passage becomes the
citation's quote, with offsets into the passage text.

A claim in another script than every passage it cites (an English answer from a Chinese
policy) shares no term with them, so the lexical score is 0 whatever it says: measured on the
answer evaluation, that refused every correct cross-language answer. With ``cross_lingual``
(a multilingual embedder, e5) such a claim is checked instead by meaning and figures: its
closest cited sentence must reach ``CROSS_LINGUAL_THRESHOLD`` cosine and contain every number
the claim states (Chinese numerals read as digits). Calibrated on the sample leave policy
against English claims: right sentence 0.84-0.87, other sentences of the same policy
0.78-0.85, an off-topic claim below 0.81. Weaker than the lexical check (a claim with the
right figure about a neighbouring topic can pass), which is why it is used only where the
lexical check cannot work at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from assistant import lexical

SUPPORT_THRESHOLD = 0.55
# One passage of a multi-citation claim must carry at least this share of it on its own to
# count as a supporting citation (the rest may come from the other passages it cites).
CITATION_SHARE = 0.25
NUMBER_WEIGHT = 2.0
NUMBER_MISMATCH_FACTOR = 0.5
QUESTION_WEIGHT = 0.3
TOPIC_MIN = 0.34
# A claim made only of question words is checkable only when it says enough ("Staff parking
# is free" to "Is staff parking free?"), not when it merely echoes ("Annual leave.").
MIN_RESTATED_TERMS = 3
QUESTION_COVERAGE_MIN = 0.25
COVERAGE_MIN_TERMS = 3
CROSS_LINGUAL_THRESHOLD = 0.84

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class SpanMatch:
    score: float
    start: int  # offsets into the text searched
    end: int


@dataclass(frozen=True)
class SupportResult:
    score: float
    supported: bool
    spans: dict[int, SpanMatch] = field(default_factory=dict)  # per cited id
    shares: dict[int, float] = field(default_factory=dict)  # per cited id, own score


@dataclass(frozen=True)
class Claim:
    """A claim's terms with their weights, ready to be scored against many texts."""

    weights: dict[str, float]
    asked: frozenset[str]  # claim terms that also occur in the question
    numbers: frozenset[str]

    @classmethod
    def of(cls, text: str, question: str | None = None) -> Claim:
        nums = lexical.numbers(text)
        weights = {t: NUMBER_WEIGHT if t in nums else 1.0 for t in lexical.terms(text)}
        asked = frozenset(weights) & lexical.term_set(question) if question else frozenset()
        return cls(weights, asked, nums)

    def score(self, source_terms: frozenset[str]) -> float:
        found = missing = 0.0
        for t, w in self.weights.items():
            w = w * QUESTION_WEIGHT if t in self.asked else w
            if t in source_terms:
                found += w
            else:
                missing += w
        if not found:
            return 0.0
        score = found / (found + missing)
        if len(self.asked) >= 2:
            topic = len(self.asked & source_terms) / len(self.asked)
            if topic < TOPIC_MIN:
                score = min(score, topic)
        return score


def best_span(claim: Claim, text: str) -> SpanMatch:
    """The sentence of ``text`` (or two adjacent ones, when that says clearly more) that covers
    most of ``claim``; ties go to the shorter span."""
    spans = lexical.sentence_spans(text)
    if not spans:
        a, b = lexical.trim(text, 0, len(text))
        return SpanMatch(0.0, a, b)
    sets = [lexical.term_set(text[a:b]) for a, b in spans]
    best = SpanMatch(-1.0, spans[0][0], spans[0][1])
    for i, (a, b) in enumerate(spans):
        s = claim.score(sets[i])
        if s > best.score or (s == best.score and b - a < best.end - best.start):
            best = SpanMatch(s, a, b)
    for i in range(len(spans) - 1):
        s = claim.score(sets[i] | sets[i + 1])
        if s >= best.score + 0.15:
            best = SpanMatch(s, spans[i][0], spans[i + 1][1])
    return best


class SupportChecker:
    """Scores claims against cited texts; optionally blends in embedding similarity.

    ``embed`` (texts -> vectors, e.g. the e5 model with its "query: "/"passage: " prefixes
    applied by the caller) lets a paraphrase with little word overlap pass when it is
    semantically close to the quoted span *and* reaches at least half the lexical threshold,
    and an answer that uses other words than the question count as addressing it. The two
    similarity thresholds are starting points from e5-small's measured relevant/irrelevant
    similarities (0.89/0.76 en, 0.92/0.82 zh), not calibrated here.
    """

    def __init__(
        self,
        threshold: float = SUPPORT_THRESHOLD,
        *,
        citation_share: float = CITATION_SHARE,
        embed: Embedder | None = None,
        embed_threshold: float = 0.88,
        question_embed_threshold: float = 0.85,
        cross_lingual: Embedder | None = None,
    ):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"support threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.citation_share = citation_share
        self.embed = embed
        self.embed_threshold = embed_threshold
        self.question_embed_threshold = question_embed_threshold
        self.cross_lingual = cross_lingual

    def check(self, claim: str, cited: Mapping[int, str], question: str | None = None) -> SupportResult:
        """Score ``claim`` against the texts it cites (id -> text)."""
        c = Claim.of(claim, question)
        if not c.weights:  # nothing checkable ("Yes [1]."): unsupported, quote the opening
            return SupportResult(0.0, False, {n: best_span(c, t) for n, t in cited.items()})
        if self.cross_lingual is not None and other_script(claim, cited.values()):
            return self._check_by_meaning(c, claim, cited)
        term_sets = {n: lexical.term_set(t) for n, t in cited.items()}
        score = c.score(frozenset().union(*term_sets.values()))
        if len(c.weights) < MIN_RESTATED_TERMS and set(c.weights) <= c.asked:
            score = 0.0  # "Annual leave [1]." only echoes the question: nothing to verify
        if c.numbers - frozenset().union(*(lexical.numbers(t) for t in cited.values())):
            score *= NUMBER_MISMATCH_FACTOR
        spans = {n: best_span(c, cited[n]) for n in cited}
        shares = {n: c.score(term_sets[n]) for n in cited}
        supported = score >= self.threshold
        if not supported and self.embed is not None and score >= self.threshold / 2:
            quotes = [cited[n][s.start : s.end] for n, s in spans.items()]
            vectors = self.embed([claim, *quotes])
            similarity = max(_cosine(vectors[0], v) for v in vectors[1:])
            supported = similarity >= self.embed_threshold
        return SupportResult(round(score, 3), supported, spans, shares)

    def _check_by_meaning(self, c: Claim, claim: str, cited: Mapping[int, str]) -> SupportResult:
        """Cross-language claim: the closest cited sentence by embedding, with every figure."""
        spans = {n: lexical.sentence_spans(t) or [lexical.trim(t, 0, len(t))] for n, t in cited.items()}
        flat = [(n, a, b) for n, ss in spans.items() for a, b in ss]
        vectors = self.cross_lingual([claim, *(cited[n][a:b] for n, a, b in flat)])
        best: dict[int, SpanMatch] = {}
        for (n, a, b), v in zip(flat, vectors[1:], strict=True):
            sim = _cosine(vectors[0], v)
            figures_ok = c.numbers <= lexical.numbers(cited[n][a:b])
            score = sim if figures_ok else sim * NUMBER_MISMATCH_FACTOR
            if n not in best or score > best[n].score:
                best[n] = SpanMatch(float(score), a, b)
        top = max(m.score for m in best.values())
        shares = {n: (1.0 if m.score >= CROSS_LINGUAL_THRESHOLD else 0.0) for n, m in best.items()}
        return SupportResult(round(float(top), 3), bool(top >= CROSS_LINGUAL_THRESHOLD), best, shares)

    def best_source(
        self, claim: str, sources: Mapping[int, frozenset[str]], question: str | None = None
    ) -> tuple[int, float] | None:
        """The source (id -> term set) that scores highest for ``claim``; ties go to the lower id."""
        c = Claim.of(claim, question)
        if not c.weights or not sources:
            return None
        score, neg_n = max((c.score(ts), -n) for n, ts in sources.items())
        return -neg_n, score

    def covers_question(self, question: str, claims: Sequence[str]) -> bool:
        """Do the supported claims address the question at all?

        Small models asked something the passages do not cover tend to restate whatever the
        passages do say, correctly cited ("Unused leave may be carried over [1]" to a question
        about parental leave). So at least a quarter of the question's content terms must
        appear in the supported claims; questions of fewer than three terms are exempt (too
        little to judge), and with an embedder a close paraphrase passes as well.
        """
        asked = lexical.term_set(question)
        if len(asked) < COVERAGE_MIN_TERMS:
            return True
        said = frozenset().union(*(lexical.term_set(c) for c in claims))
        if len(asked & said) / len(asked) >= QUESTION_COVERAGE_MIN:
            return True
        if self.embed is None:
            return False
        q, a = self.embed([question, " ".join(claims)])
        return _cosine(q, a) >= self.question_embed_threshold

    def citation_supported(self, result: SupportResult, n: int) -> bool:
        return result.supported and result.shares.get(n, 0.0) >= self.citation_share


def other_script(claim: str, texts: Iterable[str]) -> bool:
    """The claim is Chinese and no cited text is, or the other way round."""
    cjk = lexical.is_cjk(claim)
    return all(lexical.is_cjk(t) != cjk for t in texts)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0
