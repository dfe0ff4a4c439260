"""Benchmark run records: what `make bench` writes and `benchmarks/plot.py` reads."""

import json

from assistant.local_llm.server_build import cpu_flags
from benchmarks import record
from benchmarks.plot import latest, retrieval_lines


def test_a_run_record_carries_date_commit_and_this_cpus_flags(tmp_path):
    path = record.save("retrieval", {"10000": {"hybrid": {"p50_ms": 3.0, "p95_ms": 5.0}}}, tmp_path / "r.json")
    saved = json.loads(path.read_text())
    assert saved["benchmark"] == "retrieval" and saved["result"]["10000"]["hybrid"]["p95_ms"] == 5.0
    assert saved["date"].endswith("Z") and len(saved["date"]) == 20
    assert saved["commit"] != "unknown" and len(saved["commit"].split("-")[0]) == 12
    flags = set(cpu_flags())
    assert set(saved["machine"]["cpu_flags"]) <= flags
    assert ("avx2" in flags) == ("avx2" in saved["machine"]["cpu_flags"])
    assert saved["machine"]["cores"] >= 1


def test_runs_load_oldest_first_and_the_plot_takes_the_newest_of_each(tmp_path):
    for name, date, p95 in (("retrieval", "2026-12-05T06:00:00Z", 9.0), ("retrieval", "2026-12-04T06:00:00Z", 1.0),
                            ("ingest", "2026-12-03T06:00:00Z", 0.0)):
        result = {"10000": {"hybrid": {"p95_ms": p95}, "hybrid+rerank": "skipped: no reranker"}}
        (tmp_path / f"{name}-{date}.json").write_text(json.dumps({"benchmark": name, "date": date, "result": result}))
    (tmp_path / "not-a-record.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    runs = record.load_runs(tmp_path)
    assert [r["date"][:10] for r in runs] == ["2026-12-03", "2026-12-04", "2026-12-05"]
    newest = latest(runs)
    assert set(newest) == {"retrieval", "ingest"}
    assert retrieval_lines(newest["retrieval"]) == {"hybrid": [(10000, 9.0)]}  # the skipped mode is not drawn
