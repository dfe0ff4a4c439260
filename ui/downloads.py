"""Original files, served only after an access check for the asking principal.

There is no URL that serves a document: bytes are read after ``readable_document`` passed and
handed to the page that asked (a download button, an in-page PDF opener, a page preview).
Nothing is cached before the check, so a cached result cannot reach another user.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.models import Principal
from ui.library import readable_document
from ui.services import Resources

# Above this the in-page "open at page" would push the whole file through the websocket.
MAX_INLINE_BYTES = 15 * 1024 * 1024


class OriginalMissingError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class OriginalFile:
    name: str
    mime: str
    data: bytes

    @property
    def is_pdf(self) -> bool:
        return self.mime == "application/pdf"


def original_file(res: Resources, principal: Principal, collection_id: str, document_id: str) -> OriginalFile:
    info = readable_document(res, principal, collection_id, document_id)
    path = Path(info.path)
    try:
        data = path.read_bytes()
    except OSError:
        raise OriginalMissingError(f"The original file is no longer at {path}; ask an administrator "
                                   "to re-index or remove the document.") from None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return OriginalFile(path.name, mime, data)


def page_image(res: Resources, principal: Principal, collection_id: str, document_id: str, page: int,
               scale: float = 1.4) -> bytes | None:
    """PNG of one PDF page, or None when the file is not a PDF or no renderer is installed."""
    info = readable_document(res, principal, collection_id, document_id)
    if not info.path.lower().endswith(".pdf"):
        return None
    return _render_page(info.path, info.file_hash, page, scale)


@lru_cache(maxsize=64)
def _render_page(path: str, file_hash: str, page: int, scale: float) -> bytes | None:
    # Keyed by the file version; only reached after the caller's access check.
    try:
        import pypdfium2 as pdfium
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
        image = pdf[page - 1].render(scale=scale).to_pil()
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
    return f"""
<button class="docent-open-pdf" type="button" onclick='(function(){{
  const bin = atob({json.dumps(payload)});
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const url = URL.createObjectURL(new Blob([bytes], {{type: "application/pdf"}}));
  window.open(url + {json.dumps(fragment)}, "_blank");
}})()'>{html.escape(label)}</button>"""
