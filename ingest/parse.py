"""One entry point for parsing any supported file: size check, then dispatch on the suffix."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import ParseError
from ingest.parsed import ParsedDocument

SUPPORTED_SUFFIXES = (".pdf", ".docx")


def parse_file(path: Path, max_file_mb: int) -> ParsedDocument:
    """Parse ``path`` in this process. Raises ``ParseError`` with a specific reason and message.

    Untrusted files should go through ``ingest.sandbox`` instead, which runs this in a
    child process with time and memory limits.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no suffix)"
        raise ParseError("unsupported", f"unsupported file type {shown}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise ParseError("corrupt", f"file not found: {path}") from exc
    if size > max_file_mb * 1024 * 1024:
        raise ParseError("too_large", f"file too large: {size / 2**20:.0f} MB > {max_file_mb} MB limit")
    if suffix == ".pdf":
        from ingest.pdf_parser import parse_pdf

        return parse_pdf(path)
    from ingest.docx_parser import parse_docx

    # The XML inside a DOCX is what costs memory; a file may not expand past the size limit.
    return parse_docx(path, max_xml_mb=max_file_mb)
