"""Ingestion speed: Docent's batch job vs the textbook LangChain pipeline, same PDFs, same model.

    .venv/bin/python benchmarks/ingest.py [--docs DIR] [--max-pages N]

Prints pages/s for (1) the textbook pipeline a user would write — PyPDFLoader +
RecursiveCharacterTextSplitter + HuggingFaceEmbeddings (the same embedding model folder) +
QdrantVectorStore.from_documents(location=":memory:") — (2) Docent's first ingest into its
embedded index, (3) Docent's re-run on the unchanged folder; and the ratios between them.
All three run in this one process, one after the other, so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# benchmarks/retrieval.py would shadow the `retrieval` package: put the repository first and
# drop this folder from the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.record import save  # noqa: E402
from ingest.batch import BatchIngest  # noqa: E402
from ingest.indexer import DocumentIndexer  # noqa: E402
from ingest.sandbox import ParserPool  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.workspace import Workspace  # noqa: E402

DEFAULT_DOCS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "documents" / "unstructured" / "pdf"


def pick_pdfs(folder: Path, max_pages: int) -> tuple[list[Path], int]:
    """Text PDFs that both pipelines can read, smallest first, up to ``max_pages`` pages."""
    import pypdf

    chosen, pages = [], 0
    for pdf in sorted(folder.rglob("*.pdf"), key=lambda p: p.stat().st_size):
        try:
            reader = pypdf.PdfReader(pdf)
            if reader.is_encrypted:
                continue
            n = len(reader.pages)
            if pages + n > max_pages or not (reader.pages[0].extract_text() or "").strip():
                continue
        except Exception:
            continue
        chosen.append(pdf)
        pages += n
    return chosen, pages


def textbook(pdfs: list[Path], model_dir: str) -> float:
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"})
    embeddings.embed_query("warm up")
    t0 = time.perf_counter()
    docs = [d for pdf in pdfs for d in PyPDFLoader(str(pdf)).load()]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    QdrantVectorStore.from_documents(splits, embeddings, location=":memory:", collection_name="bench")
    return time.perf_counter() - t0


def docent(pdfs: list[Path], data_dir: Path, embedder) -> tuple[float, float, int]:
    folder = data_dir / "share"
    folder.mkdir(parents=True)
    for pdf in pdfs:
        shutil.copy(pdf, folder / pdf.name)
    settings = Settings(_env_file=None, data_dir=data_dir / "docent")
    with Workspace(settings, embedder=embedder) as ws, ParserPool(
        timeout_s=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb, max_file_mb=settings.max_file_mb
    ) as pool:
        rec = ws.ready_collection("bench", create=True)
        job = BatchIngest(ws.index, DocumentIndexer(settings, ws.index, ws.embedder), pool.parse)
        t0 = time.perf_counter()
        first = job.run(rec, [folder])
        t1 = time.perf_counter()
        again = job.run(rec, [folder])
        t2 = time.perf_counter()
    failed = [f for f in first.files if f.status == "failed"]
    if failed:
        print(f"note: {len(failed)} file(s) failed in Docent: {[f.reason for f in failed][:3]}")
    assert all(f.status == "unchanged" for f in again.files)
    return t1 - t0, t2 - t1, first.totals["chunks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--max-pages", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    pdfs, pages = pick_pdfs(args.docs, args.max_pages)
    if not pdfs:
        sys.exit(f"no readable PDFs under {args.docs}")
    settings = Settings(_env_file=None)
    from retrieval.embeddings import Embedder

    embedder = Embedder.from_settings(settings)
    embedder.embed_passages(["warm up"])
    model_dir = str(embedder.path)

    with tempfile.TemporaryDirectory() as tmp:
        first_s, rerun_s, chunks = docent(pdfs, Path(tmp), embedder)
    book_s = textbook(pdfs, model_dir)

    result = {
        "documents": len(pdfs),
        "pages": pages,
        "docent_chunks": chunks,
        "textbook_pages_per_s": round(pages / book_s, 2),
        "docent_first_pages_per_s": round(pages / first_s, 2),
        "docent_rerun_pages_per_s": round(pages / rerun_s, 1),
        "first_vs_textbook": round(book_s / first_s, 2),
        "rerun_vs_first": round(first_s / rerun_s, 1),
    }
    saved = save("ingest", result)
    print(f"saved {saved}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{len(pdfs)} PDFs, {pages} pages ({args.docs})")
    print(f"textbook LangChain pipeline : {result['textbook_pages_per_s']:8.2f} pages/s ({book_s:.1f} s)")
    print(f"Docent first ingest         : {result['docent_first_pages_per_s']:8.2f} pages/s ({first_s:.1f} s, {chunks} chunks)")
    print(f"Docent unchanged re-run     : {result['docent_rerun_pages_per_s']:8.1f} pages/s ({rerun_s:.2f} s)")
    print(f"first ingest vs textbook    : {result['first_vs_textbook']:.2f}x  (target >= 3x)")
    print(f"re-run vs first ingest      : {result['rerun_vs_first']:.1f}x  (target >= 50x)")


if __name__ == "__main__":
    main()
