"""Admin · Ingestion history: every batch run, upload and re-index, with failures and their reasons."""

from __future__ import annotations

import time

import streamlit as st

from ui import theme
from ui.views.common import context, fmt_time

_PERIODS = {"Last 24 hours": 86400, "Last 7 days": 7 * 86400, "Last 30 days": 30 * 86400, "All time": None}


def render() -> None:
    ctx = context(admin=True)
    st.title("Ingestion history")
    rows = ctx.app.collections_overview(ctx.principal)
    names = {r.rec.id: r.rec.name for r in rows}
    a, b, c, d = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    collection = a.selectbox("Collection", ["All collections", *names.values()], key="history_collection")
    period = b.selectbox("Period", list(_PERIODS), index=1, key="history_period")
    path_filter = c.text_input("File contains", key="history_path", placeholder="e.g. handbook").strip().lower()
    failed_only = d.toggle("Only runs with failures", key="history_failed")
    span = _PERIODS[period]
    runs = ctx.app.ingest_runs(ctx.principal, None if collection == "All collections" else collection,
                           failed_only=failed_only, since=time.time() - span if span else None)
    if path_filter:
        runs = [r for r in runs if any(path_filter in f.get("path", "").lower() for f in r.report.get("files", []))]
    if not runs:
        theme.empty_state("No runs match",
                          "Batch runs (`docent ingest`, e.g. from cron), uploads and re-indexing appear here "
                          "with every file's result.")
        return
    table = []
    for r in runs:
        t = r.report.get("totals", {})
        table.append({
            "Started": fmt_time(r.started_at), "Collection": names.get(r.collection_id, r.collection_id),
            "Source": r.report.get("source", "batch"), "By": r.report.get("user", "cron"),
            "Files": t.get("files", 0), "Indexed": t.get("indexed", 0), "Unchanged": t.get("unchanged", 0),
            "Failed": t.get("failed", 0), "Seconds": round(r.finished_at - r.started_at, 1),
        })
    st.dataframe(table, hide_index=True, width="stretch")
    failed_runs = [r for r in runs if r.report.get("totals", {}).get("failed")]
    if failed_runs:
        st.subheader("Failures")
    for r in failed_runs:
        failures = [f for f in r.report.get("files", []) if f.get("status") == "failed"
                    and (not path_filter or path_filter in f.get("path", "").lower())]
        with st.expander(f"{fmt_time(r.started_at)} · {names.get(r.collection_id, '?')} · {len(failures)} failed"):
            st.dataframe([{"File": f["path"], "Reason": f.get("reason") or "—"} for f in failures],
                         hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
