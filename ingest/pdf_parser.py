"""PDF to text with page-exact provenance, using pypdf.

Per page: positioned text runs are put in reading order and split into paragraphs by
``pdf_layout``; pypdf's default (content-stream order) extraction is the fallback whenever
the positioned runs lose text (right-to-left scripts, rotated text, fonts layout mode cannot
interpret) or are unavailable. Pages without a text layer are reported, never indexed.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import ParseError
from ingest.parsed import ParsedDocument, TextBuilder
from ingest.pdf_layout import page_paragraphs, page_runs
from ingest.text_cleanup import HyphenVocabulary, clean_chars, collapse_spaces, join_lines, usable_title

log = logging.getLogger(__name__)

# Positioned runs must keep at least this share of the characters the default extraction
# finds; below it the page is read in content-stream order instead.
_MIN_LAYOUT_COVERAGE = 0.9
_HEADING_SCALE = 1.15  # font height relative to body text that marks a heading
_TERMINAL = tuple(".!?:;。！？；")
_BULLET = re.compile(r"^(?:[•●▪■◦‣∙○►▶✓❖-]\s|\(?\d{1,2}[.)]\s)")
# Layout runs are in visual order; right-to-left scripts need the logical order of the stream.
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


@dataclass(frozen=True)
class _Para:
    lines: tuple[str, ...]
    height: float | None  # None when read in content-stream order (no geometry)


def _limit_error() -> type[Exception]:
    # pypdf's inflate/size limits (LimitReachedError) arrived in 6.x; older ones have none.
    try:
        from pypdf.errors import LimitReachedError
    except ImportError:  # pragma: no cover - depends on the installed pypdf

        class LimitReachedError(Exception):  # type: ignore[no-redef]
            pass

    return LimitReachedError


def parse_pdf(path: Path) -> ParsedDocument:
    """Parse a PDF; raises ``ParseError`` for encrypted, corrupt or text-less files."""
    LimitReachedError = _limit_error()  # noqa: N806

    reader = _open(path)
    try:
        n_pages = len(reader.pages)
    except LimitReachedError as exc:
        raise ParseError("too_large", f"PDF exceeds a parser safety limit: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any failure of the page tree is corruption
        raise ParseError("corrupt", f"corrupt PDF: cannot read page tree ({_detail(exc)})") from exc
    if n_pages == 0:
        raise ParseError("no_text", "no text (the PDF has no pages)")

    pages: list[list[_Para]] = []
    empty: list[int] = []
    failures: list[str] = []
    for number in range(1, n_pages + 1):
        try:
            paras = _page_paragraphs(reader.pages[number - 1])
        except LimitReachedError as exc:
            raise ParseError("too_large", f"PDF exceeds a parser safety limit on page {number}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - one broken page must not sink the document
            log.warning("%s: page %d unreadable: %s", path, number, _detail(exc))
            failures.append(f"page {number}: {_detail(exc)}")
            paras = []
        if not paras:
            empty.append(number)
        pages.append(paras)

    if len(empty) == n_pages:
        if failures:
            raise ParseError("corrupt", f"corrupt PDF: no page could be read ({failures[0]})")
        raise ParseError("no_text", "no text (scanned?)")

    vocabulary = HyphenVocabulary(line for page in pages for para in page for line in para.lines)
    body = _body_height(pages)
    builder = TextBuilder()
    first_heading = ""
    for number, paras in enumerate(pages, start=1):
        for para in paras:
            text = join_lines(para.lines, vocabulary)
            heading = _is_heading(para, text, body)
            if heading and not first_heading:
                first_heading = usable_title(text)
            builder.add(text, "heading" if heading else "text", page=number)

    return ParsedDocument(
        path=str(path),
        format="pdf",
        title=_metadata_title(reader) or first_heading or clean_chars(path.stem),
        text=builder.text,
        blocks=builder.blocks,
        pages=n_pages,
        empty_pages=tuple(empty),
    )


def _open(path: Path):  # noqa: ANN202 - pypdf.PdfReader
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    LimitReachedError = _limit_error()  # noqa: N806

    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        raise ParseError("corrupt", "corrupt PDF: the file is empty")
    if b"%PDF-" not in head:
        raise ParseError("corrupt", "corrupt PDF: no %PDF- header (not a PDF file?)")
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to restrict printing/copying: the user password
            # is empty and anyone can read them. Only a real opening password stops us.
            if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise ParseError("encrypted", "password required")
    except ParseError:
        raise
    except FileNotDecryptedError as exc:
        raise ParseError("encrypted", "password required") from exc
    except DependencyError as exc:
        raise ParseError("encrypted", f"AES-encrypted PDF needs the 'cryptography' package ({exc})") from exc
    except NotImplementedError as exc:
        raise ParseError("unsupported", f"unsupported PDF encryption: {exc}") from exc
    except LimitReachedError as exc:
        raise ParseError("too_large", f"PDF exceeds a parser safety limit: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for broken files
        raise ParseError("corrupt", f"corrupt PDF: {_detail(exc)}") from exc
    return reader


def _page_paragraphs(page) -> list[_Para]:  # noqa: ANN001 - pypdf PageObject
    layout = page_runs(page)
    if layout is not None and layout.runs:
        sample = "".join(r.text for r in layout.runs)
        rtl = len(_RTL.findall(sample)) > 0.1 * len(sample)
        if layout.complete and not rtl:
            return [_Para(p.lines, p.height) for p in page_paragraphs(layout.runs)]
        if not rtl:
            stream_text = clean_chars(page.extract_text() or "")
            paras = page_paragraphs(layout.runs)
            kept = sum(len(line.replace(" ", "")) for p in paras for line in p.lines)
            if kept >= _MIN_LAYOUT_COVERAGE * len(re.sub(r"\s", "", stream_text)):
                return [_Para(p.lines, p.height) for p in paras]
            return _stream_paragraphs(stream_text)
    return _stream_paragraphs(clean_chars(page.extract_text() or ""))


def _stream_paragraphs(text: str) -> list[_Para]:
    """Paragraphs from content-stream text, which has line breaks but no geometry: a blank line,
    a bullet, or a short line ending a sentence closes a paragraph."""
    lines = [collapse_spaces(line) for line in text.splitlines()]
    longest = max((len(line) for line in lines), default=0)
    paras: list[list[str]] = [[]]
    for line in lines:
        if not line:
            if paras[-1]:
                paras.append([])
            continue
        if paras[-1] and _BULLET.match(line):
            paras.append([])
        paras[-1].append(line)
        if line.endswith(_TERMINAL) and len(line) < 0.8 * longest:
            paras.append([])
    return [_Para(tuple(p), None) for p in paras if p]


def _body_height(pages: list[list[_Para]]) -> float | None:
    """Font height of most of the text (character-weighted median)."""
    weighted = sorted(
        (p.height, sum(len(line) for line in p.lines)) for page in pages for p in page if p.height is not None
    )
    total = sum(w for _, w in weighted)
    if not total:
        return None
    acc = 0
    for height, w in weighted:
        acc += w
        if acc * 2 >= total:
            return height
    return statistics.median(h for h, _ in weighted)


def _is_heading(para: _Para, text: str, body: float | None) -> bool:
    if para.height is None or body is None or len(para.lines) > 2:
        return False
    words = text.split()
    return (
        para.height >= _HEADING_SCALE * body
        and 0 < len(words) <= 20
        and len(text) >= 2
        and not text.endswith((".", ",", ";"))
        and any(ch.isalpha() for ch in text)
    )


def _metadata_title(reader) -> str:  # noqa: ANN001
    try:
        meta = reader.metadata
        title = meta.title if meta is not None else None
    except Exception:  # noqa: BLE001 - unreadable metadata is common and harmless
        return ""
    return usable_title(title)


def _detail(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."
