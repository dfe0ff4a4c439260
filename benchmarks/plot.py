"""One PNG of the latest benchmark runs (the records ``benchmarks/record.py`` writes): ingestion
pages/s against the textbook pipeline, time to first token, and search p95 by index size.

    .venv/bin/python benchmarks/plot.py [--runs benchmarks/results/runs] [--out benchmarks/results/figures.png]

``make bench`` installs matplotlib (only this script needs it) and runs this last. A panel whose
benchmark has no run yet says so instead of drawing. Each panel's title names the run's date,
commit and CPU, since figures from different machines are not comparable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.record import RESULTS, RUNS, load_runs  # noqa: E402

MODES = ("dense", "sparse", "hybrid", "hybrid+rerank")


def latest(runs: list[dict]) -> dict[str, dict]:
    """The newest run of each benchmark (runs come oldest first)."""
    return {r["benchmark"]: r for r in runs}


def _stamp(run: dict) -> str:
    m = run.get("machine") or {}
    return f"{run['date'][:10]} · {run.get('commit', '?')[:12]} · {m.get('cores', '?')} cores {m.get('cpu', '')}"


def ingestion_bars(run: dict) -> list[tuple[str, float]]:
    r = run["result"]
    return [("textbook\nLangChain", r["textbook_pages_per_s"]), ("Docent\nfirst ingest", r["docent_first_pages_per_s"])]


def ttft_bars(runs: dict[str, dict]) -> list[tuple[str, float]]:
    """Seconds to the first token: the answer benchmark's answer and summary, and the API's
    p50 beside the same answer in-process."""
    bars = []
    if "answer" in runs:
        for r in runs["answer"]["result"]["results"]:
            bars.append((f"{r['kind']}\n{runs['answer']['result']['model'] or ''}"[:28], r["ttft_s"]))
    for name in ("api", "api-extractive"):
        if name in runs:
            r = runs[name]["result"]
            bars.append((f"in-process\n({name})", r["ttft_ms_in_process_p50"] / 1000))
            bars.append((f"API\n({name})", r["ttft_ms_api_p50"] / 1000))
    return bars


def retrieval_lines(run: dict) -> dict[str, list[tuple[int, float]]]:
    """p95 milliseconds per mode against the number of chunks; modes not measured are left out."""
    r = run["result"]
    sizes = sorted(int(k) for k in r if k.isdigit())
    lines: dict[str, list[tuple[int, float]]] = {}
    for mode in MODES:
        points = [(n, r[str(n)][mode]["p95_ms"]) for n in sizes if isinstance(r[str(n)].get(mode), dict)]
        if points:
            lines[mode] = points
    return lines


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} run yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(ax, bars: list[tuple[str, float]], unit: str) -> None:
    labels, values = zip(*bars)
    drawn = ax.bar(range(len(values)), values, color="#4a7ab8")
    ax.bar_label(drawn, labels=[f"{v:.2f}" for v in values], fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel(unit)


def draw(runs: dict[str, dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on these machines
    import matplotlib.pyplot as plt

    fig, (ingest_ax, ttft_ax, search_ax) = plt.subplots(1, 3, figsize=(15, 4.6))
    if "ingest" in runs:
        _bars(ingest_ax, ingestion_bars(runs["ingest"]), "pages / s")
        ingest_ax.set_title(f"Ingestion\n{_stamp(runs['ingest'])}", fontsize=9)
    else:
        _empty(ingest_ax, "ingest")
    bars = ttft_bars(runs)
    if bars:
        _bars(ttft_ax, bars, "seconds to first token")
        source = runs.get("answer") or runs.get("api") or runs["api-extractive"]
        ttft_ax.set_title(f"Time to first token\n{_stamp(source)}", fontsize=9)
    else:
        _empty(ttft_ax, "answer or api")
    lines = retrieval_lines(runs["retrieval"]) if "retrieval" in runs else {}
    if lines:
        for mode, points in lines.items():
            xs, ys = zip(*points)
            search_ax.plot(xs, ys, marker="o", label=mode)
        search_ax.set_xscale("log")
        search_ax.set_xlabel("chunks in the index")
        search_ax.set_ylabel("p95 ms (query embedding included)")
        search_ax.legend(fontsize=8)
        search_ax.set_title(f"Search latency\n{_stamp(runs['retrieval'])}", fontsize=9)
    else:
        _empty(search_ax, "retrieval")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--out", type=Path, default=RESULTS / "figures.png")
    args = ap.parse_args()
    runs = latest(load_runs(args.runs))
    if not runs:
        print(f"no run records under {args.runs}: run `make bench` first", file=sys.stderr)
        return 1
    print(f"wrote {draw(runs, args.out)} from {', '.join(sorted(runs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
