"""Upload: add PDF/DOCX files to a collection you may write to, with progress and a per-file result."""

from __future__ import annotations

import streamlit as st

from ui import theme
from ui.usecases import Upload
from ui.views.common import context, fmt_time, plain_error

_ICONS = {"indexed": "indexed", "unchanged": "unchanged (already indexed)", "failed": "failed",
          "skipped": "skipped", "removed": "removed"}


def show_report(report) -> None:
    t = report.totals
    if t["failed"]:
        st.warning(f"{t['indexed']} file(s) indexed, {t['failed']} failed. See the reasons below.")
    elif t["indexed"] or t["unchanged"]:
        st.success(f"{t['indexed']} file(s) indexed ({t['chunks']} passages), {t['unchanged']} unchanged. "
                   "You can ask about them now.")
    rows = [{"File": f.path.rsplit("/", 1)[-1], "Result": _ICONS.get(f.status, f.status),
             "Pages": f.pages, "Passages": f.chunks or None,
             "Details": f.reason or "; ".join(f.warnings) or ""} for f in report.files]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Finished {fmt_time(report.finished_at)} in {t['seconds']:.1f} s")


def render() -> None:
    ctx = context()
    st.title("Add documents")
    st.caption("Files are parsed and indexed right away; you can ask about them as soon as they are done. "
               "A file with the same name as an earlier upload replaces it.")
    try:
        targets = ctx.app.writable_collections(ctx.principal)
    except Exception as exc:
        st.error(plain_error(exc))
        return
    if not targets and ctx.principal.is_admin:
        theme.empty_state("No collections yet", "Create a collection on the Collections page first.")
        return
    if not targets:
        theme.empty_state("You cannot add documents yet",
                          "Uploading needs write access to a collection. Ask an administrator to add one of "
                          "your groups to a collection's writers.")
        return
    names = [r.name for r in targets]
    default = next((i for i, n in enumerate(names) if n in ctx.selected), 0)
    collection = st.selectbox("Collection", names, index=default, key="upload_collection")
    round_ = st.session_state.setdefault("upload_round", 0)
    files = st.file_uploader("PDF or DOCX files", type=["pdf", "docx"], accept_multiple_files=True,
                             key=f"uploader-{round_}",
                             help="A file with the same name as an earlier upload replaces it.")
    if st.button("Add to collection", type="primary", disabled=not files, icon=":material/upload:"):
        bar = st.progress(0.0, text="Saving the files…")

        def progress(path: str, done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{done} of {total}: {path.rsplit('/', 1)[-1]}")

        try:
            report = ctx.app.upload(ctx.principal, collection,
                                    [Upload(f.name, f.getvalue()) for f in files], progress)
        except Exception as exc:
            bar.empty()
            st.error(plain_error(exc))
            return
        bar.empty()
        st.session_state["last_upload"] = report
        st.session_state["upload_round"] = round_ + 1  # a fresh, empty uploader
        st.rerun()
    report = st.session_state.get("last_upload")
    if report is not None:
        st.subheader("Last upload")
        show_report(report)


if __name__ == "__main__":
    render()
