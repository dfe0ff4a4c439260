"""Write small, valid text PDFs for tests (no PDF library needed): one Helvetica text line per
entry, so a test knows exactly which words sit on which page."""

from __future__ import annotations

import textwrap
from pathlib import Path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    """``pages``: the text of each page; paragraphs are separated by blank lines."""
    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    info_id = font_id + 1
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, text in enumerate(pages):
        lines: list[str] = []
        for para in text.split("\n\n"):
            lines.extend(textwrap.wrap(" ".join(para.split()), 90) or [""])
            lines.append("")
        ops = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects.append(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    path.write_bytes(bytes(out))
    return path


FILLER = (
    "Bookings for flights, trains and hotels are made through the company travel desk, which keeps "
    "a record of every trip for insurance purposes. Employees choose the most economical option that "
    "fits the purpose of the trip. Economy class applies to flights shorter than six hours. "
)

TRAVEL_POLICY_PAGES = [
    "Travel Policy\n\nThis policy applies to every employee who travels for work.\n\n" + FILLER * 6,
    "Meal allowance\n\nThe daily meal allowance for business trips is 45 euros per day. Receipts must be "
    "submitted within 30 days after returning from the trip.",
]

FALCON_PAGES = [
    "Project Falcon budget\n\nThe confidential budget of Project Falcon is 9 million euros for the next "
    "fiscal year. Only the finance group may read this report."
]
