"""A tiny company share of real DOCX files, written with python-docx, for the operations tests
(metrics, audit, re-index, concurrency). Small on purpose: a few chunks per document."""

from __future__ import annotations

from pathlib import Path

from docx import Document

TOPICS: dict[str, tuple[str, list[str]]] = {
    "leave-policy": ("Annual leave policy", [
        "Every employee receives twenty-five days of paid annual leave per calendar year. Leave requests "
        "are submitted in the HR portal at least two weeks before the first day of absence.",
        "Unused leave days may be carried over into the first quarter of the following year. After March "
        "they expire unless the manager approved an exception in writing.",
    ]),
    "travel-expenses": ("Travel expenses", [
        "Business travel is booked through the travel desk. Train travel is preferred for trips under five "
        "hours; flights need the approval of the cost centre owner.",
        "Hotel costs are reimbursed up to one hundred and forty euros per night. Receipts are uploaded within "
        "thirty days of returning, otherwise the claim is rejected.",
    ]),
    "it-security": ("IT security rules", [
        "Passwords must be at least fourteen characters long and are never shared with colleagues. "
        "Multi-factor authentication is mandatory for email and the VPN.",
        "Lost laptops are reported to the service desk within one hour. The device is then wiped remotely "
        "and a replacement is issued the next working day.",
    ]),
    "parking": ("Parking and bicycles", [
        "The underground car park has two hundred spaces, allocated by the facilities team each January. "
        "Electric vehicle chargers are on level minus one.",
        "Bicycles are parked in the locked shed next to the north entrance. Showers and lockers are on the "
        "ground floor for employees who cycle to work.",
    ]),
    "onboarding": ("Onboarding checklist", [
        "New employees receive their badge and laptop on the first morning. The buddy programme pairs each "
        "newcomer with an experienced colleague for six weeks.",
        "The onboarding checklist covers the code of conduct training, the data protection course and a "
        "meeting with the works council within the first month.",
    ]),
    "canteen": ("Canteen and coffee", [
        "The canteen serves lunch from half past eleven to two o'clock. A vegetarian dish is offered every "
        "day, and the menu is published on the intranet on Fridays.",
        "Coffee machines on every floor are free of charge. Please report broken machines to facilities "
        "through the service desk.",
    ]),
}


def write_docx(path: Path, title: str, paragraphs: list[str], marker: str = "") -> Path:
    doc = Document()
    doc.core_properties.title = title
    doc.add_heading(title, level=1)
    for text in paragraphs:
        doc.add_paragraph(f"{text} {marker}".strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path


def write_share(folder: Path, names: list[str] | None = None, marker: str = "") -> list[Path]:
    """Write the named documents (default all) into ``folder``; ``marker`` is appended to every
    paragraph, so a rewritten share has new content (and new file hashes)."""
    return [write_docx(folder / f"{name}.docx", *TOPICS[name], marker=marker) for name in (names or list(TOPICS))]
