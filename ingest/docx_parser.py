"""DOCX to text with heading provenance, using python-docx for the package and styles.

The body is walked as XML so that paragraphs and tables come out in body order, including
those wrapped in content controls (``w:sdt``) and text boxes, which python-docx's high-level
API skips. Headers, footers, footnotes and comments live in other parts and are never read.

Rules worth knowing:
- heading level: the paragraph's own outline level, else its style's (following ``basedOn``),
  else a style named "Heading N"; "Title" is a heading block that does not enter the path;
- tables: one row per ``w:tr``, cells joined by " | "; a horizontally merged cell appears once,
  a vertically merged cell repeats the text of the cell it continues (so a row read alone
  still says what it belongs to); header rows = the rows Word marks "repeat as header row",
  else the first row of any table with two or more rows; a 1x1 table is a frame around text
  and is read as paragraphs;
- deleted revisions and field codes are skipped; inserted revisions and field results are kept.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ingest.errors import ParseError
from ingest.parsed import ParsedDocument, TextBuilder
from ingest.text_cleanup import clean_chars, collapse_spaces, usable_title

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_STRICT_REL = b"http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING_NAME = re.compile(r"^heading\s*(\d)$", re.I)


def _w(tag: str) -> str:
    return f"{{{_W}}}{tag}"


_P, _TBL, _SDT, _SDT_CONTENT, _CUSTOM_XML = _w("p"), _w("tbl"), _w("sdt"), _w("sdtContent"), _w("customXml")
_TR, _TC, _T, _TAB, _PTAB, _BR, _CR = _w("tr"), _w("tc"), _w("t"), _w("tab"), _w("ptab"), _w("br"), _w("cr")
_NO_BREAK_HYPHEN, _TXBX = _w("noBreakHyphen"), _w("txbxContent")
_MATH_T = f"{{{_M}}}t"
_ALTERNATE, _CHOICE, _FALLBACK = f"{{{_MC}}}AlternateContent", f"{{{_MC}}}Choice", f"{{{_MC}}}Fallback"
# Subtrees that hold no visible body text of this paragraph.
_SKIP = frozenset(
    _w(t) for t in ("del", "moveFrom", "pPr", "rPr", "instrText", "delText", "fldChar", "tblPr", "trPr", "tcPr")
)


def parse_docx(path: Path, max_xml_mb: int) -> ParsedDocument:
    """Parse a DOCX; raises ``ParseError`` for encrypted, strict, corrupt or bomb-like files."""
    _check_package(path, max_xml_mb)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except PackageNotFoundError as exc:
        raise ParseError("corrupt", f"corrupt DOCX: {exc}") from exc
    except ValueError as exc:  # python-docx: "file ... is not a Word file, content type is ..."
        raise ParseError("unsupported", f"not a Word document: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - broken XML, missing parts, ...
        raise ParseError("corrupt", f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc

    walker = _BodyWalker(_style_levels(document))
    walker.walk(document.element.body)
    try:
        meta_title = usable_title(document.core_properties.title)
    except Exception:  # noqa: BLE001 - malformed core properties do not matter for the text
        meta_title = ""
    text = walker.builder.text
    if not text.strip():
        raise ParseError("no_text", "no text (the document body is empty)")
    return ParsedDocument(
        path=str(path),
        format="docx",
        title=meta_title or walker.first_heading or clean_chars(path.stem),
        text=text,
        blocks=walker.builder.blocks,
        pages=None,
    )


def _check_package(path: Path, max_xml_mb: int) -> None:
    """Fail fast, with a specific reason, on what python-docx would report vaguely or choke on."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise ParseError("corrupt", "corrupt DOCX: the file is empty")
    if head == _OLE_MAGIC:
        # Password-protected Office files are OLE containers holding an "EncryptedPackage".
        data = path.read_bytes()
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise ParseError("encrypted", "password required")
        raise ParseError("unsupported", "legacy Word 97-2003 file named .docx; save it as .docx")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            xml_bytes = sum(i.file_size for i in zf.infolist() if i.filename.endswith((".xml", ".rels")))
            rels = zf.read("_rels/.rels") if "_rels/.rels" in names else b""
    except zipfile.BadZipFile as exc:
        raise ParseError("corrupt", f"corrupt DOCX: not a valid zip archive ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - truncated members, bad CRC, ...
        raise ParseError("corrupt", f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    if _STRICT_REL in rels:
        raise ParseError("unsupported", "strict OOXML DOCX is not supported; re-save it as a Word document (.docx)")
    if xml_bytes > max_xml_mb * 1024 * 1024:
        raise ParseError(
            "too_large", f"DOCX expands to {xml_bytes / 2**20:.0f} MB of XML > {max_xml_mb} MB limit (zip bomb?)"
        )


def _style_levels(document) -> dict[str, int]:  # noqa: ANN001 - docx.Document
    """Style id -> heading level (1-based; 0 marks the Title style) for styles that are headings."""
    styles: dict[str, tuple[str, int | None, str | None]] = {}
    for st in document.styles.element.iterchildren(_w("style")):
        sid = st.get(_w("styleId"))
        if sid is None:
            continue
        name_el = st.find(_w("name"))
        outline = st.find(f"{_w('pPr')}/{_w('outlineLvl')}")
        based = st.find(_w("basedOn"))
        styles[sid] = (
            (name_el.get(_w("val")) if name_el is not None else sid) or sid,
            _int(outline.get(_w("val"))) if outline is not None else None,
            based.get(_w("val")) if based is not None else None,
        )
    levels: dict[str, int] = {}
    for sid in styles:
        seen: set[str] = set()
        cur: str | None = sid
        while cur in styles and cur not in seen:
            seen.add(cur)
            name, outline, based = styles[cur]
            if outline is not None:
                if outline < 9:  # 9 = "body text"
                    levels[sid] = outline + 1
                break
            m = _HEADING_NAME.match(name.strip())
            if m:
                levels[sid] = int(m.group(1))
                break
            if name.strip().lower() == "title":
                levels[sid] = 0
                break
            cur = based
    return levels


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _BodyWalker:
    def __init__(self, style_levels: dict[str, int]) -> None:
        self.builder = TextBuilder()
        self.first_heading = ""
        self._levels = style_levels
        self._path: list[tuple[int, str]] = []

    @property
    def heading_path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._path)

    def walk(self, container) -> None:  # noqa: ANN001 - lxml element
        for el in _body_children(container):
            if el.tag == _P:
                self._paragraph(el)
            else:
                self._table(el)

    def _paragraph(self, p) -> None:  # noqa: ANN001
        textboxes: list = []
        text = _paragraph_text(p, textboxes)
        level = self._level(p)
        if text and level is not None:
            if not self.first_heading:
                self.first_heading = usable_title(text)
            if level > 0:
                while self._path and self._path[-1][0] >= level:
                    self._path.pop()
                self._path.append((level, text.replace("\n", " ")))
            self.builder.add(text, "heading", heading_path=self.heading_path)
        elif text:
            self.builder.add(text, "text", heading_path=self.heading_path)
        for box in textboxes:
            self.walk(box)

    def _level(self, p) -> int | None:  # noqa: ANN001
        ppr = p.find(_w("pPr"))
        if ppr is not None:
            outline = ppr.find(_w("outlineLvl"))
            if outline is not None:
                lvl = _int(outline.get(_w("val")))
                if lvl is not None:
                    return lvl + 1 if lvl < 9 else None
            style = ppr.find(_w("pStyle"))
            if style is not None:
                return self._levels.get(style.get(_w("val")) or "")
        return None

    def _table(self, tbl) -> None:  # noqa: ANN001
        rows, header_rows = _table_rows(tbl)
        if len(rows) == 1 and len(rows[0]) == 1:  # a frame around text, not tabular data
            for cell in _first_cell(tbl):
                self.walk(cell)
            return
        rows = [r for r in rows if any(c for c in r)]
        if rows:
            if header_rows == 0 and len(rows) >= 2:
                header_rows = 1
            self.builder.add_table(rows, header_rows, heading_path=self.heading_path)


def _body_children(container) -> Iterator:  # noqa: ANN001
    """Paragraphs and tables in body order, looking through content controls and custom XML."""
    for el in container:
        tag = el.tag
        if tag in (_P, _TBL):
            yield el
        elif tag == _SDT:
            content = el.find(_SDT_CONTENT)
            if content is not None:
                yield from _body_children(content)
        elif tag == _CUSTOM_XML:
            yield from _body_children(el)


def _paragraph_text(p, textboxes: list) -> str:  # noqa: ANN001
    parts: list[str] = []
    _collect(p, parts, textboxes)
    lines = (collapse_spaces(line) for line in clean_chars("".join(parts)).split("\n"))
    return "\n".join(line for line in lines if line)


def _collect(el, out: list[str], textboxes: list) -> None:  # noqa: ANN001
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):  # comments, processing instructions
            continue
        if tag in (_T, _MATH_T):
            out.append(child.text or "")
        elif tag in (_TAB, _PTAB):
            out.append(" ")
        elif tag in (_BR, _CR):
            out.append("\n")
        elif tag == _NO_BREAK_HYPHEN:
            out.append("-")
        elif tag in _SKIP:
            continue
        elif tag == _TXBX:
            textboxes.append(child)  # its paragraphs become blocks of their own
        elif tag == _ALTERNATE:
            choice = child.find(_CHOICE)  # mc:Fallback repeats the same content (VML)
            if choice is not None:
                _collect(choice, out, textboxes)
        else:
            _collect(child, out, textboxes)


def _cells(tr) -> Iterator:  # noqa: ANN001
    for el in tr:
        if el.tag == _TC:
            yield el
        elif el.tag in (_SDT, _CUSTOM_XML):
            inner = el.find(_SDT_CONTENT) if el.tag == _SDT else el
            if inner is not None:
                yield from _cells(inner)


def _rows(tbl) -> Iterator:  # noqa: ANN001
    for el in tbl:
        if el.tag == _TR:
            yield el
        elif el.tag in (_SDT, _CUSTOM_XML):
            inner = el.find(_SDT_CONTENT) if el.tag == _SDT else el
            if inner is not None:
                yield from _rows(inner)


def _first_cell(tbl) -> list:  # noqa: ANN001
    for tr in _rows(tbl):
        for tc in _cells(tr):
            return [tc]
    return []


def _cell_text(tc) -> str:  # noqa: ANN001
    texts: list[str] = []
    for el in tc.iter(_P):
        if any(a.tag == _FALLBACK for a in el.iterancestors()):
            continue
        boxes: list = []
        t = _paragraph_text(el, boxes)
        if t:
            texts.append(t.replace("\n", " "))
    return " ".join(texts)


def _table_rows(tbl) -> tuple[list[list[str]], int]:  # noqa: ANN001
    rows: list[list[str]] = []
    header_rows = 0
    counting_header = True
    above: dict[int, str] = {}  # grid column -> text of the cell there in the previous row
    for tr in _rows(tbl):
        trpr = tr.find(_w("trPr"))
        col = 0
        if trpr is not None:
            before = trpr.find(_w("gridBefore"))
            col = _int(before.get(_w("val"))) or 0 if before is not None else 0
        is_header = trpr is not None and _on(trpr.find(_w("tblHeader")))
        if counting_header and is_header:
            header_rows += 1
        else:
            counting_header = False
        cells: list[str] = []
        current: dict[int, str] = {}
        for tc in _cells(tr):
            tcpr = tc.find(_w("tcPr"))
            span = 1
            continues = False
            if tcpr is not None:
                gs = tcpr.find(_w("gridSpan"))
                span = max(_int(gs.get(_w("val"))) or 1, 1) if gs is not None else 1
                vm = tcpr.find(_w("vMerge"))
                continues = vm is not None and vm.get(_w("val"), "continue") == "continue"
            text = above.get(col, "") if continues else _cell_text(tc)
            cells.append(text)
            for c in range(col, col + span):
                current[c] = text
            col += span
        above = current
        rows.append(cells)
    return rows, header_rows


def _on(el) -> bool:  # noqa: ANN001 - an OOXML on/off property element
    return el is not None and el.get(_w("val"), "true").lower() not in ("0", "false", "off")
