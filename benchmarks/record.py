"""Where a benchmark run's figures go: one JSON file per run under ``benchmarks/results/runs/``,
stamped with what the figures depend on (date, commit, CPU and its instruction-set flags, cores,
memory, load), so runs on different machines or commits can be told apart and compared.

    from benchmarks.record import save
    path = save("retrieval", result)          # -> benchmarks/results/runs/retrieval-20261205T061500Z.json

``benchmarks/plot.py`` reads these files; a run's result stays under its ``result`` key, as the
benchmark itself printed it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from assistant.local_llm.server_build import cpu_flags

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "runs"
# The flags that change what the embedding model and llama-server cost on this CPU.
_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                      "amx_bf16")


def commit() -> str:
    """HEAD's hash, with ``-dirty`` when the working tree has changes (figures then belong to
    no commit exactly)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine() -> dict:
    flags = set(cpu_flags())
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "cpu_flags": [f for f in _FLAGS_OF_INTEREST if f in flags],
            "load_avg": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version()}


def save(benchmark: str, result: dict, out: Path | None = None) -> Path:
    """Write one run's record and return its path. ``out`` overrides the file (a figure kept
    under a fixed name, such as a GPU run's); by default a new file per run, never overwritten."""
    now = time.gmtime()
    record = {"benchmark": benchmark, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", now), "commit": commit(),
              "machine": machine(), "result": result}
    path = out or RUNS / f"{benchmark}-{time.strftime('%Y%m%dT%H%M%SZ', now)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_runs(folder: Path = RUNS) -> list[dict]:
    """Every run record under ``folder``, oldest first; files that are not records are skipped."""
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and {"benchmark", "date", "result"} <= record.keys():
            record["path"] = str(path)
            runs.append(record)
    return sorted(runs, key=lambda r: r["date"])
