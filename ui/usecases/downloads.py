"""Original files and page images, served only after an access check for the asking principal.

There is no URL that serves a document: bytes are read after ``Library.document`` passed and
handed to the front end that asked (a download button, an in-page PDF opener, a page preview).
Nothing is cached before the check, so a cached result cannot reach another user.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.models import Principal
from ui.usecases.errors import OriginalMissingError

# Above this the in-page "open at page" would push the whole file through the websocket.
MAX_INLINE_BYTES = 15 * 1024 * 1024


@dataclass(frozen=True)
class OriginalFile:
    name: str
    mime: str
    data: bytes

    @property
    def is_pdf(self) -> bool:
        return self.mime == "application/pdf"


class Downloads:
    def download(self, principal: Principal, collection: str, document_id: str) -> OriginalFile:
        """The original file of a document ``principal`` may read now."""
        info = self.document(principal, collection, document_id)
        path = Path(info.path)
        try:
            data = path.read_bytes()
        except OSError:
            raise OriginalMissingError(f"The original file is no longer at {path}; ask an administrator "
                                       "to re-index or remove the document.") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return OriginalFile(path.name, mime, data)

    def page_image(self, principal: Principal, collection: str, document_id: str, page: int,
                   quotes: tuple[str, ...] = (), scale: float = 1.4) -> bytes | None:
        """PNG of one PDF page with the quotes highlighted on it, or None when the file is not a
        PDF or no renderer is installed."""
        info = self.document(principal, collection, document_id)
        if not info.path.lower().endswith(".pdf"):
            return None
        return _render_page(info.path, info.file_hash, page, tuple(q for q in quotes if q.strip()), scale)


_WINDOW = 5  # words: short enough to sit on one line of the page, long enough to be specific


def _quote_runs(textpage, quote: str) -> list[tuple[int, int]]:
    """Character runs of ``quote`` on the page. The extracted text and the page's own text
    differ in line breaks and joins, so the quote is matched as overlapping word windows."""
    words = quote.split()
    fragments = [quote] if len(words) <= _WINDOW else [
        " ".join(words[i:i + _WINDOW]) for i in range(0, len(words) - _WINDOW + 1)]
    chars: set[int] = set()
    for fragment in fragments:
        searcher = textpage.search(fragment, match_case=False)
        hit = searcher.get_next()
        if hit:
            chars.update(range(hit[0], hit[0] + hit[1]))
    runs: list[tuple[int, int]] = []
    for c in sorted(chars):
        if runs and runs[-1][0] + runs[-1][1] == c:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((c, 1))
    return runs


@lru_cache(maxsize=64)
def _render_page(path: str, file_hash: str, page: int, quotes: tuple[str, ...], scale: float) -> bytes | None:
    # Keyed by the file version; only reached after the caller's access check.
    try:
        import pypdfium2 as pdfium
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    import io

    try:
        pdf = pdfium.PdfDocument(path)
    except (pdfium.PdfiumError, OSError):
        return None
    try:
        if not 1 <= page <= len(pdf):
            return None
        pdf_page = pdf[page - 1]
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        height = pdf_page.get_height()
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        textpage = pdf_page.get_textpage()
        for quote in quotes:
            for start, count in _quote_runs(textpage, quote):
                for k in range(textpage.count_rects(start, count)):
                    left, bottom, right, top = textpage.get_rect(k)
                    draw.rectangle([left * scale - 2, (height - top) * scale - 2, right * scale + 2,
                                    (height - bottom) * scale + 2], fill=(255, 214, 0, 90))
        image = Image.alpha_composite(image, overlay).convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
        return buf.getvalue()
    finally:
        pdf.close()


def open_at_page_html(file: OriginalFile, page: int | None, label: str) -> str | None:
    """A button that opens the PDF in a new tab at ``page`` (a Blob URL: browsers refuse to
    navigate to data: URLs, and no server route exists that could leak the file)."""
    if not file.is_pdf or len(file.data) > MAX_INLINE_BYTES:
        return None
    payload = base64.b64encode(file.data).decode("ascii")
    fragment = f"#page={int(page)}" if page else ""
    button_id = "docent-open-" + uuid.uuid4().hex[:12]
    return f"""
<button class="docent-open-pdf" type="button" id="{button_id}">{html.escape(label)}</button>
<script>
(function () {{
  const button = document.getElementById({json.dumps(button_id)});
  if (!button) return;
  const payload = {json.dumps(payload)};
  button.addEventListener("click", function () {{
    const bin = atob(payload);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const url = URL.createObjectURL(new Blob([bytes], {{type: "application/pdf"}}));
    window.open(url + {json.dumps(fragment)}, "_blank");
  }});
}})();
</script>"""
