"""Document parsing on real files: provenance (pages, heading paths, table rows), the errors a
batch report shows, reading order against docling's ground truth, and the sandbox's limits."""

from __future__ import annotations

import ctypes
import difflib
import os
import re
import time
import zipfile
from itertools import pairwise
from pathlib import Path

import docx
import pytest

from ingest.errors import ParseError
from ingest.parse import parse_file
from ingest.parsed import ParsedDocument
from ingest.sandbox import ParserPool, parse_in_worker
from ingest.text_cleanup import HyphenVocabulary, join_lines

FIXTURES = Path(__file__).parent / "fixtures"
MB = 50  # max_file_mb for in-process parses


def parse(name: str) -> ParsedDocument:
    return parse_file(FIXTURES / name, MB)


def block_texts(doc: ParsedDocument, kind: str | None = None) -> list[str]:
    return [doc.block_text(b) for b in doc.blocks if kind is None or b.kind == kind]


def block_containing(doc: ParsedDocument, phrase: str):
    hits = [b for b in doc.blocks if phrase in doc.block_text(b)]
    assert hits, f"{phrase!r} not found in any block"
    return hits[0]


def expect_error(path: Path, reason: str, max_file_mb: int = MB) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_file(path, max_file_mb)
    assert info.value.reason == reason, str(info.value)
    return info.value


@pytest.fixture(scope="module")
def empty_pages_pdf() -> ParsedDocument:
    return parse("layout-parser-paper-with-empty-pages.pdf")


@pytest.fixture(scope="module")
def korean_pdf() -> ParsedDocument:
    return parse("normal_4pages.pdf")


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    "name",
    ["layout-parser-paper-with-empty-pages.pdf", "normal_4pages.pdf", "word_tables.docx", "unit_test_headers.docx"],
)
def test_blocks_tile_the_text_in_order(name):
    doc = parse(name)
    assert doc.blocks and doc.text
    assert doc.blocks[0].start == 0 and doc.blocks[-1].end == len(doc.text)
    for a, b in pairwise(doc.blocks):
        assert doc.text[a.end : b.start] == "\n\n"
    for b in doc.blocks:
        body = doc.block_text(b)
        assert body and body == body.strip() and "\n\n" not in body
        if b.kind == "table":
            assert b.rows[0][0] == b.start and b.rows[-1][1] == b.end
            assert "\n".join(doc.text[s:e] for s, e in b.rows) == body


# ----------------------------------------------------------------------------------- PDF


def test_pdf_blocks_carry_their_page_and_empty_pages_are_reported(empty_pages_pdf):
    doc = empty_pages_pdf
    assert doc.format == "pdf" and doc.pages == 4
    assert doc.empty_pages == (2, 3)
    assert block_containing(doc, "1 Introduction").page == 1
    assert block_containing(doc, "LayoutParser is well aligned with recent").page == 4
    assert {b.page for b in doc.blocks} == {1, 4}
    assert doc.title == "LayoutParser: A Unified Toolkit for Deep Learning Based Document Image Analysis"


def test_pdf_blocks_are_paragraph_sized(empty_pages_pdf):
    doc = empty_pages_pdf
    # Page 1 holds a title, authors, abstract, keywords and two paragraphs, not one blob.
    page1 = [doc.block_text(b) for b in doc.blocks if b.page == 1]
    assert len(page1) >= 6
    assert max(len(t) for t in page1) < 1500
    assert block_containing(doc, "LayoutParser: A Unified Toolkit").kind == "heading"


def test_hyphenation_at_line_ends_is_undone(empty_pages_pdf):
    # pypdf's own text has "im-\nportant" and "applica-\ntions" in this paper.
    assert "important" in empty_pages_pdf.text and "im- portant" not in empty_pages_pdf.text
    assert "applications" in empty_pages_pdf.text


def test_hyphen_kept_when_the_document_uses_the_compound():
    vocab = HyphenVocabulary(["we use self-locking nuts", "the elastic stop nut"])
    assert join_lines(["the self-", "locking nut"], vocab) == "the self-locking nut"
    assert join_lines(["the sub-", "optimal one"], vocab) == "the suboptimal one"
    assert join_lines(["第一行的文字", "第二行"], vocab) == "第一行的文字第二行"  # no space inside Chinese


def test_korean_two_column_pdf_keeps_hangul_and_pages(korean_pdf):
    doc = korean_pdf
    assert doc.pages == 4 and doc.empty_pages == ()
    assert doc.title == "코로나-19 관련 보험약관상 재해보험금 지급문제 및 개선과제"
    assert block_containing(doc, "1 들어가며").page == 1
    assert block_containing(doc, "3 문제점").page == 3
    assert "세계보건기구(WHO)는 지난 2020." in doc.text


def _words(text: str) -> list[str]:
    text = re.sub(r"<!--.*?-->", " ", text)
    return [w.lower() for w in re.findall(r"[^\W_]+", text)]


def test_two_column_reading_order_matches_docling_ground_truth(korean_pdf):
    """Word-sequence similarity (difflib ratio on word lists) against docling's .md.

    Measured on this file: ours 0.963, pypdf default (content-stream order) 0.929, pypdf
    layout mode 0.552. 0.95 fails if we regress to either pypdf mode, e.g. when a pypdf
    upgrade breaks the layout internals pdf_layout relies on and the fallback takes over.
    """
    truth = (FIXTURES / "normal_4pages.groundtruth.md").read_text(encoding="utf-8")
    ratio = difflib.SequenceMatcher(None, _words(korean_pdf.text), _words(truth), autojunk=False).ratio()
    assert ratio >= 0.95, ratio


def test_right_to_left_text_comes_out_in_logical_order():
    doc = parse("right_to_left_01.pdf")
    assert "تحسين الإنتاجية وحل المشكلات من خلال البرمجة بلغة R" in doc.text


def test_pdf_with_empty_user_password_opens():
    doc = parse("copy-protected.pdf")  # AES, empty user password: anyone may read it
    assert doc.pages == 2
    assert block_containing(doc, "1 Introduction").page == 1


def test_password_protected_pdf_needs_a_password():
    err = expect_error(FIXTURES / "libreoffice-writer-password.pdf", "encrypted")
    assert err.message == "password required"


def test_scanned_pdf_has_no_text():
    err = expect_error(FIXTURES / "ocr_test.pdf", "no_text")
    assert err.message == "no text (scanned?)"


def test_truncated_and_fake_pdfs_are_corrupt(tmp_path):
    data = (FIXTURES / "pdflatex-4-pages.pdf").read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(data[: len(data) * 6 // 10])
    assert expect_error(truncated, "corrupt").message.startswith("corrupt PDF: ")
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"<html>not a pdf</html>")
    assert "no %PDF- header" in expect_error(fake, "corrupt").message


def test_pdf_decompression_bomb_is_stopped(tmp_path):
    # A 100 KB stream that inflates to 100 MB; pypdf's 75 MB inflate limit must hold.
    import zlib

    content = zlib.compress(b"BT /F1 12 Tf 72 712 Td (Hello) Tj ET\n" + b" " * (100 * 2**20), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bytes(out))
    assert "safety limit" in expect_error(bomb, "too_large").message


# ---------------------------------------------------------------------------------- DOCX


def test_docx_heading_paths_follow_heading_levels():
    doc = parse("unit_test_headers.docx")
    assert doc.format == "docx" and doc.pages is None and doc.title == "Test Document"
    path = {doc.block_text(b): b.heading_path for b in doc.blocks}
    assert path["Paragraph 1.1"] == ("Section 1",)
    assert path["Paragraph 1.2.3.1"] == ("Section 1", "Section 1.2", "Section 1.2.3")
    # Heading 3 straight under Heading 1, then a Heading 2 replaces it.
    assert path["Paragraph 2.1.1.1"] == ("Section 2", "Section 2.1.1")
    assert path["Paragraph 2.1.2"] == ("Section 2", "Section 2.1")
    # A heading opens its own section; the Title is a heading outside the path.
    assert path["Section 1.1"] == ("Section 1", "Section 1.1")
    title = block_containing(doc, "Test Document")
    assert title.kind == "heading" and title.heading_path == ()


def test_docx_tables_are_rows_with_header_in_body_order():
    doc = parse("word_tables.docx")
    kinds = [b.kind for b in doc.blocks]
    assert kinds[:5] == ["heading", "text", "table", "text", "table"]
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert len(tables) == 7
    first = tables[0]
    assert [doc.text[s:e] for s, e in first.rows] == [
        "Header 0.0 | Header 0.1 | Header 0.2",
        "Cell 1.0 | Cell 1.1 | Cell 1.2",
        "Cell 2.0 | Cell 2.1 | Cell 2.2",
    ]
    assert first.header_rows == 1
    # The paragraph that introduces each table comes right before it.
    i = doc.blocks.index(tables[3])
    assert doc.block_text(doc.blocks[i - 1]) == "A non-uniform table with vertical spans"
    # A horizontal merge appears once; a vertical merge repeats in each row it covers.
    assert doc.text[slice(*tables[1].rows[1])] == "Cell 1.0 | Merged Cell 1.1 1.2"
    vertical = [doc.text[s:e] for s, e in tables[3].rows]
    assert vertical[1] == "Cell 1.0 | Merged Cell 1.1 2.1 | Cell 1.2"
    assert vertical[2] == "Cell 2.0 | Merged Cell 1.1 2.1 | Cell 2.2"


def test_docx_headers_and_footers_stay_out_of_the_body():
    doc = parse("docx_page_header_footer_first_page.docx")
    assert "This is body text on page 1." in block_texts(doc)
    assert "This is body text on page 2." in block_texts(doc)
    assert "HEADER" not in doc.text and "FOOTER" not in doc.text


def test_strict_ooxml_docx_gets_a_specific_error():
    assert "strict OOXML" in expect_error(FIXTURES / "Strict.docx", "unsupported").message


def test_broken_docx_files(tmp_path):
    truncated = tmp_path / "truncated.docx"
    data = (FIXTURES / "word_tables.docx").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert expect_error(truncated, "corrupt").message.startswith("corrupt DOCX")
    # Office encrypts a .docx into an OLE container with an "EncryptedPackage" stream.
    locked = tmp_path / "locked.docx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "EncryptedPackage".encode("utf-16-le"))
    assert expect_error(locked, "encrypted").message == "password required"


def test_docx_zip_bomb_is_refused_before_inflating(tmp_path):
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("word/document.xml", "w") as fh:
        for _ in range(12):
            fh.write(b" " * 2**20)
    assert bomb.stat().st_size < 100_000
    err = expect_error(bomb, "too_large", max_file_mb=10)
    assert "12 MB of XML > 10 MB limit" in err.message


def test_chinese_docx_headings_paragraphs_and_tables(tmp_path):
    d = docx.Document()
    d.add_heading("第一章 总则", level=1)
    d.add_paragraph("为规范公司差旅费用报销，制定本办法。本办法适用于全体员工。")
    d.add_heading("第一节 住宿标准", level=2)
    table = d.add_table(rows=4, cols=2)
    for r, cells in enumerate([("城市", "标准（元/晚）"), ("级别", "上限"), ("北京", "600"), ("成都", "450")]):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    for tr in table._tbl.tr_lst[:2]:  # Word's "repeat as header row" on the first two rows
        tr.get_or_add_trPr().append(docx.oxml.parse_xml(f'<w:tblHeader {docx.oxml.ns.nsdecls("w")}/>'))
    d.add_paragraph("超出标准部分由个人承担。")
    path = tmp_path / "差旅制度.docx"
    d.save(str(path))

    doc = parse_file(path, MB)
    assert doc.title == "第一章 总则"
    para = block_containing(doc, "为规范公司差旅费用报销")
    assert doc.block_text(para) == "为规范公司差旅费用报销，制定本办法。本办法适用于全体员工。"
    assert para.heading_path == ("第一章 总则",)
    tbl = next(b for b in doc.blocks if b.kind == "table")
    assert tbl.heading_path == ("第一章 总则", "第一节 住宿标准")
    assert tbl.header_rows == 2
    assert [doc.text[s:e] for s, e in tbl.rows] == ["城市 | 标准（元/晚）", "级别 | 上限", "北京 | 600", "成都 | 450"]
    assert block_texts(doc)[-1] == "超出标准部分由个人承担。"


# ------------------------------------------------------------------------------ dispatch


def test_unsupported_suffix_and_too_large(tmp_path):
    sheet = tmp_path / "budget.xlsx"
    sheet.write_bytes(b"PK")
    assert expect_error(sheet, "unsupported").message.startswith("unsupported file type .xlsx")
    big = tmp_path / "big.pdf"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)  # sparse: costs no disk
    assert expect_error(big, "too_large", max_file_mb=2).message == "file too large: 3 MB > 2 MB limit"


# ------------------------------------------------------------------------------- sandbox
# A test-only parse function: the pool runs it in its child instead of parse_file, choosing the
# misbehaviour by file name. It exercises the sandbox itself (the parsers are tested above).


def scripted_parse(path: Path, max_file_mb: int) -> ParsedDocument:
    if path.name == "slow.pdf":
        time.sleep(60)
    elif path.name == "greedy.pdf":
        hoard = []
        while True:
            hoard.append(bytearray(64 * 2**20))
    elif path.name == "poison.pdf":
        ctypes.string_at(0)  # segfault
    elif path.name == "buggy.pdf":
        return {}["missing"]
    return ParsedDocument(str(path), "pdf", str(os.getpid()), "x", (), 1)


def failure(pool: ParserPool, name: str) -> tuple[str, str]:
    with pytest.raises(ParseError) as info:
        pool.parse(Path(name))
    return info.value.reason, info.value.message


def test_pool_returns_the_document_intact():
    path = FIXTURES / "word_tables.docx"
    with ParserPool(workers=1, timeout_s=60) as pool:
        assert pool.parse(path) == parse_file(path, pool.max_file_mb)
        assert failure(pool, str(FIXTURES / "libreoffice-writer-password.pdf")) == ("encrypted", "password required")


def test_pool_survives_poison_files_and_reuses_healthy_workers():
    with ParserPool(workers=1, timeout_s=2, memory_mb=400, parse_fn=scripted_parse) as pool:
        pid = pool.parse(Path("a.pdf")).title
        assert pool.parse(Path("b.pdf")).title == pid  # no new interpreter per file

        started = time.monotonic()
        assert failure(pool, "slow.pdf") == ("timeout", "parse timed out after 2 s")
        assert time.monotonic() - started < 30
        after_timeout = pool.parse(Path("c.pdf")).title
        assert after_timeout != pid  # the hung worker was killed and replaced

        assert failure(pool, "greedy.pdf") == ("memory", "out of memory (limit 400 MB)")
        after_memory = pool.parse(Path("d.pdf")).title
        assert after_memory != after_timeout

        assert failure(pool, "poison.pdf") == ("corrupt", "parser crashed (SIGSEGV)")
        reason, message = failure(pool, "buggy.pdf")
        assert reason == "corrupt" and message.startswith("parser crashed: KeyError")
        assert pool.parse(Path("e.pdf")).title.isdigit()


def test_pool_parses_a_batch_on_two_workers():
    names = [f"f{i}.pdf" for i in range(6)] + ["buggy.pdf"]
    with ParserPool(workers=2, timeout_s=30, parse_fn=scripted_parse) as pool:
        results = list(pool.parse_many(Path(n) for n in names))
    assert [p.name for p, _ in results] == names
    assert isinstance(results[-1][1], ParseError)
    assert len({r.title for _, r in results[:-1]}) == 2  # both workers served, each reused


def test_parse_in_worker_convenience():
    doc = parse_in_worker(FIXTURES / "unit_test_headers.docx", timeout_s=60, memory_mb=1024, max_file_mb=MB)
    assert doc.title == "Test Document"


def test_lone_surrogates_never_reach_the_tokenizer():
    # A broken ToUnicode map in a valid PDF makes pypdf emit lone UTF-16 surrogates; a str
    # holding one cannot be UTF-8 encoded, and the tokenizer failed with "TextInputSequence must be str".
    from ingest.text_cleanup import clean_chars, usable_title

    assert clean_chars("Bold \udb62italic\ud800 x\u00b2") == "Bold italic x\u00b2"
    assert usable_title("Annual \udfff report") == "Annual report"


# docling's test PDF (header, footer, footnote, styled text, lists, link) whose extracted text
# holds U+DB62: it failed ingestion with an internal TypeError from the tokenizer.
_SHARED_DOCS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "documents"
_SURROGATE_PDF = _SHARED_DOCS / "docling" / "pdf" / "sources" / "skipped_1page.pdf"


@pytest.mark.skipif(not _SURROGATE_PDF.exists(), reason="needs ../shared/data/documents (docling test data)")
def test_pdf_with_surrogates_in_its_text_is_chunked_and_embedded(embedder):
    from ingest.chunker import chunk_document
    from ingest.indexer import embedding_text

    doc = parse_file(_SURROGATE_PDF, max_file_mb=50)
    for text in (doc.title, doc.text):
        text.encode("utf-8")  # raises on a lone surrogate
    drafts = chunk_document(doc, embedder.count_tokens, 256, 32)
    assert drafts
    vectors = embedder.embed_passages([embedding_text(doc.title, d.heading_path, d.text) for d in drafts])
    assert len(vectors) == len(drafts)
