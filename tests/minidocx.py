"""A real .docx (python-docx) with one paragraph per string: the plainest Word file a test needs."""

from __future__ import annotations

from pathlib import Path

from docx import Document


def write_docx(path: Path, paragraphs: list[str]) -> Path:
    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path
