"""Reading order and paragraphs for one PDF page, from positioned text runs.

pypdf's default extraction follows the content stream, which is usually, but not always, the
authoring order; its "layout" mode keeps geometry but prints columns side by side, line by
line. Here the positioned runs that layout mode computes are regrouped instead: rows by
baseline, a column gutter found as the x position that (almost) no row covers, bands of rows
between full-width rows, each band read left column first, then paragraphs split at vertical
gaps, indents, short last lines and bullets. Measured against docling's ground truth this beats
both pypdf modes on multi-column pages (see tests/test_parsing.py for the figures).

The runs come from pypdf's layout-mode internals (``text_show_operations``, a private API);
if they are missing or fail, ``page_runs`` returns ``None`` and the caller falls back to
pypdf's default extraction. The reading-order test fails if that fallback ever becomes the
norm, e.g. after a pypdf upgrade.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from itertools import pairwise

from ingest.text_cleanup import clean_chars

_MIN_COLUMN_ROWS = 3  # rows a column side needs before a page counts as multi-column
_PROSE_CHARS = 12  # mean characters per row that separates prose columns from table columns
_BULLET = re.compile(r"^(?:[•●▪■◦‣∙○►▶✓❖-]\s|\(?\d{1,2}[.)]\s|\(?[a-z][.)]\s)")
_TERMINAL = tuple(".!?:;。！？；」』”\")")


@dataclass(slots=True)
class Run:
    """Text drawn by one BT/ET group on one baseline. y grows downwards."""

    x0: float
    x1: float
    baseline: float
    height: float
    text: str
    space: float  # about the width of a space at this size
    order: int  # position in the content stream, to order overlapping runs


class Row:
    """Runs on one baseline; its geometry is computed once, when the row is built."""

    __slots__ = ("runs", "x0", "x1", "baseline", "height", "_text")

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        self._text: str | None = None
        self._measure()

    def _measure(self) -> None:
        runs = self.runs
        if not runs:
            self.x0 = self.x1 = self.baseline = self.height = 0.0
            return
        self.x0 = min(r.x0 for r in runs)
        self.x1 = max(r.x1 for r in runs)
        # The baseline and size of most of the row's characters, not of a sub/superscript.
        weighted = sorted(((r.height, r.baseline), len(r.text.strip()) or 1) for r in runs)
        half, acc = sum(w for _, w in weighted) / 2, 0
        for (height, baseline), w in weighted:
            acc += w
            if acc >= half:
                self.height, self.baseline = height, baseline
                break
        self._text = None

    def text(self) -> str:
        if self._text is not None:
            return self._text
        out = ""
        prev: Run | None = None
        for run in sorted(self.runs, key=lambda r: (round(r.x0), r.order)):
            piece = run.text
            # A gap of most of a space is a word break; less is kerning or letter-spacing.
            if (
                prev is not None
                and out
                and piece
                and not out[-1].isspace()
                and not piece[0].isspace()
                and run.x0 - prev.x1 > 0.6 * max(run.space, prev.space, 0.1 * run.height)
            ):
                out += " "
            out += piece
            prev = run
        self._text = out
        return out

    def split(self, gutter: float) -> tuple[Row, Row]:
        left = Row([r for r in self.runs if r.x1 <= gutter])
        right = Row([r for r in self.runs if r.x0 >= gutter])
        return left, right

    def crosses(self, gutter: float) -> bool:
        return any(r.x0 < gutter < r.x1 for r in self.runs)


@dataclass(frozen=True, slots=True)
class PageRuns:
    runs: list[Run]
    complete: bool  # False when layout mode skipped text (form XObjects, rotated or odd fonts)


def page_runs(page) -> PageRuns | None:  # noqa: ANN001 - a pypdf PageObject
    """Positioned text runs of a page, or ``None`` when pypdf's layout internals are unusable.

    Uses ``text_show_operations`` and ``PageObject._layout_mode_fonts``, unchanged from pypdf
    5.x to 6.x. Layout mode leaves out text in form XObjects, rotated or skewed text and fonts
    it cannot interpret; such pages are marked incomplete so the caller compares with the
    default extraction.
    """
    try:
        from pypdf._text_extraction._layout_mode import text_show_operations
        from pypdf.generic import ArrayObject, ContentStream, StreamObject

        contents = page.get("/Contents")
        if contents is None:
            return PageRuns([], True)
        contents = contents.get_object()
        if not isinstance(contents, (ArrayObject, StreamObject)):
            return PageRuns([], True)
        ops = list(ContentStream(contents, page.pdf, "bytes").operations)
        fonts = page._layout_mode_fonts()
        complete = (
            not _draws_forms(page, ops)
            and not _turns_text(ops)
            and all(getattr(f, "interpretable", True) for f in fonts.values())
        )
        groups = text_show_operations(iter(ops), fonts, True, None)
    except Exception:  # noqa: BLE001 - private API or odd content: the caller falls back
        return None
    # Runs are pypdf's BT groups (one line of one text object), not single text-showing ops:
    # layout mode mis-places some ops (e.g. after links), and whole groups absorb that.
    runs: list[Run] = []
    for order, g in enumerate(groups):
        text = clean_chars(str(g["text"])).replace("\n", " ")
        if not text.strip():
            continue
        height = max(float(g["font_height"]), 1.0)
        x0 = float(g["tx"])
        baseline = -float(g["ty"]) * g["flip_sort"]
        runs.append(Run(x0, max(float(g["displaced_tx"]), x0 + 0.1), baseline, height, text, 0.25 * height, order))
    return PageRuns(runs, complete)


def _turns_text(ops: list) -> bool:
    """Whether any matrix rotates or skews (layout mode drops text drawn that way)."""
    for operands, op in ops:
        if op in (b"Tm", b"cm") and len(operands) == 6:
            try:
                if abs(float(operands[1])) > 1e-6 or abs(float(operands[2])) > 1e-6:
                    return True
            except (TypeError, ValueError):
                return True
    return False


def _draws_forms(page, ops: list) -> bool:  # noqa: ANN001
    """Whether the page paints form XObjects, whose text layout mode does not read."""
    names = {operands[0] for operands, op in ops if op == b"Do" and operands}
    if not names:
        return False
    try:
        xobjects = page["/Resources"]["/XObject"]
        return any(xobjects[n].get_object().get("/Subtype") == "/Form" for n in names if n in xobjects)
    except Exception:  # noqa: BLE001 - unreadable resources: assume the worst
        return True


def group_rows(runs: list[Run]) -> list[Row]:
    """Runs on (nearly) the same baseline form a row; sub/superscripts stay with their line."""
    rows: list[Row] = []
    current: list[Run] = []
    anchor = height = 0.0
    for run in sorted(runs, key=lambda r: (r.baseline, r.x0)):
        if current:
            delta = abs(run.baseline - anchor)
            same_line = delta <= 0.1 * max(run.height, height)
            near = delta <= 0.5 * max(run.height, height)
            if same_line or (near and not any(r.x0 < run.x1 - 0.5 and run.x0 < r.x1 - 0.5 for r in current)):
                current.append(run)
                continue
            rows.append(Row(current))
        current = [run]
        anchor, height = run.baseline, run.height
    if current:
        rows.append(Row(current))
    return rows


def _find_gutter(rows: list[Row]) -> float | None:
    """The x of a column gutter: the least-covered x in the middle of the text block."""
    lo = min(r.x0 for r in rows)
    hi = max(r.x1 for r in rows)
    width = int(hi - lo) + 1
    if not 50 <= width <= 20_000:  # too narrow for columns, or coordinates gone wild
        return None
    cover = [0] * (width + 1)
    for row in rows:
        spans = sorted((int(r.x0 - lo), int(r.x1 - lo)) for r in row.runs)
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            cover[a] += 1
            cover[min(b, width)] -= 1
    running = 0
    for i in range(width + 1):
        running += cover[i]
        cover[i] = running
    a, b = int(0.15 * width), int(0.85 * width)
    least = min(cover[a:b])
    if least > 0.4 * len(rows):
        return None
    best: tuple[int, int] | None = None  # widest run of least-covered x
    start = None
    for i in range(a, b + 1):
        if i < b and cover[i] == least:
            start = i if start is None else start
        elif start is not None:
            if best is None or i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    if best is None:
        return None
    body = statistics.median(r.height for r in rows)
    if best[1] - best[0] < 0.4 * body:
        return None
    return lo + (best[0] + best[1]) / 2


def _prose(rows: list[Row]) -> bool:
    rows = [r for r in rows if r.runs]
    if len(rows) < 2:
        return False
    return sum(len(r.text().replace(" ", "")) for r in rows) / len(rows) >= _PROSE_CHARS


def order_rows(rows: list[Row], depth: int = 0) -> list[list[Row]]:
    """Rows grouped into segments in reading order: a segment is one column of one band."""
    if len(rows) < 2 * _MIN_COLUMN_ROWS or depth > 2:
        return [rows] if rows else []
    gutter = _find_gutter(rows)
    if gutter is None:
        return [rows]
    sides = [row.split(gutter) for row in rows if not row.crosses(gutter)]
    if sum(1 for left, _ in sides if left.runs) < _MIN_COLUMN_ROWS or sum(
        1 for _, right in sides if right.runs
    ) < _MIN_COLUMN_ROWS:
        return [rows]
    segments: list[list[Row]] = []
    band: list[Row] = []
    spanning: list[Row] = []

    def flush_band() -> None:
        if not band:
            return
        halves = [row.split(gutter) for row in band]
        left = [lh for lh, _ in halves if lh.runs]
        right = [rh for _, rh in halves if rh.runs]
        if left and right and _prose(left) and _prose(right):
            segments.extend(order_rows(left, depth + 1))
            segments.extend(order_rows(right, depth + 1))
        else:  # a table or a figure's labels: read row by row
            segments.append(list(band))
        band.clear()

    for row in rows:
        if row.crosses(gutter):
            flush_band()
            spanning.append(row)
        else:
            if spanning:
                segments.append(list(spanning))
                spanning.clear()
            band.append(row)
    flush_band()
    if spanning:
        segments.append(spanning)
    return segments


@dataclass(frozen=True, slots=True)
class Paragraph:
    lines: tuple[str, ...]
    height: float  # font height of its text, for heading detection


def _paragraph_breaks(segment: list[Row], pitch: float) -> list[list[Row]]:
    left = min(r.x0 for r in segment)
    right = max(r.x1 for r in segment)
    paragraphs: list[list[Row]] = [[segment[0]]]
    for i in range(1, len(segment)):
        prev, row = segment[i - 1], segment[i]
        h = max(prev.height, row.height)
        text, prev_text = row.text().strip(), prev.text().strip()
        nxt = segment[i + 1] if i + 1 < len(segment) else None
        new = (
            row.baseline - prev.baseline > max(1.45 * pitch, 1.6 * h)
            or row.baseline < prev.baseline  # moved up: not the same flow
            or abs(row.height - prev.height) > 0.15 * h
            or (  # first-line indent; a list item's hanging indent is not one
                row.x0 - left > 0.8 * h
                and prev.x0 - left < 0.5 * h
                and nxt is not None
                and nxt.x0 - left < 0.5 * h
                and not _BULLET.match(prev_text)
            )
            or (prev.x1 < right - 4 * h and prev_text.endswith(_TERMINAL))
            or bool(_BULLET.match(text))
        )
        if new:
            paragraphs.append([row])
        else:
            paragraphs[-1].append(row)
    return paragraphs


def page_paragraphs(runs: list[Run]) -> list[Paragraph]:
    """The page's paragraphs in reading order."""
    rows = group_rows(runs)
    if not rows:
        return []
    steps = [b.baseline - a.baseline for a, b in pairwise(rows)]
    steps = [s for s in steps if 0 < s < 3 * max(a.height for a in rows)]
    pitch = statistics.median(steps) if steps else 1.2 * statistics.median(r.height for r in rows)
    out: list[Paragraph] = []
    for segment in order_rows(rows):
        for para in _paragraph_breaks(segment, pitch):
            lines = tuple(t for t in (r.text() for r in para) if t.strip())
            if lines:
                out.append(Paragraph(lines, statistics.median(r.height for r in para)))
    return out
