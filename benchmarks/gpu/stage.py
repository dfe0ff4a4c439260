"""Pack the fetched wheels and the model folder into pieces that fit one device call each.

A device call carries at most 64 MiB (the repository copy included), so everything the
GPU machine needs travels as one uncompressed tar stream (wheels are already zipped)
cut into equal pieces, one piece per call, each in its own folder:

    .gpu/pieces/01/stage.tar.01   .gpu/pieces/01/manifest.json
    .gpu/pieces/02/stage.tar.02   .gpu/pieces/02/manifest.json   ...

manifest.json (the same in every piece) names every piece with its sha256 and the
sha256 of every wheel, so the device can check each piece on arrival and every wheel
after rejoining (benchmarks/gpu/device_stage.sh). Cutting one stream rather than each
large wheel separately needs the fewest calls: 8 pieces of 56 MiB for ~442 MiB.

Usage:  python benchmarks/gpu/stage.py [--piece-mib 56] [--no-docent] [--gguf]
Run fetch_wheels.py and make_model_dir.py first. ``--gguf`` adds the Qwen2.5-Coder-0.5B GGUF
(real weights, 491 MB: 17 pieces in all) for the functional run (functional_run.sh).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from fetch_wheels import LISTS, WheelError, check, read_pins  # noqa: E402
from make_model_dir import GGUF_NAME, GGUF_SHA256, sha256_of  # noqa: E402

CALL_LIMIT_MIB = 64


class StageError(RuntimeError):
    """Something the stream needs is missing, or a piece would not fit one call."""


def tree_mib() -> float:
    """Size of what every call sends anyway: tracked + untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout
    total = 0
    for name in filter(None, out.split(b"\0")):
        path = REPO / name.decode()
        if path.is_file():
            total += path.stat().st_size
    shared = REPO / "shared"
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total / 2**20


def collect(wheels: Path, model: Path, groups: list[str], gguf: Path | None = None
            ) -> tuple[list[tuple[Path, str]], dict[str, str]]:
    """Files for the stream as (path, name in tar), and {tar name: sha256} of the wheels
    (and of the GGUF, when it travels)."""
    files: list[tuple[Path, str]] = []
    sums: dict[str, str] = {}
    for group in groups:
        for pin in read_pins(LISTS[group]):
            path = wheels / group / pin.wheel
            if not path.is_file():
                raise StageError(f"{path} missing: run benchmarks/gpu/fetch_wheels.py")
            check(path, pin)
            name = f"wheels/{group}/{pin.wheel}"
            files.append((path, name))
            sums[name] = pin.sha256
    projects: dict[str, str] = {}
    for name in sums:  # pip refuses two versions of one project in one install (cffi did once)
        project = name.rsplit("/", 1)[1].split("-", 1)[0].lower().replace("_", "-")
        if project in projects:
            raise StageError(f"{project} is in two lists ({projects[project]}, {name}): keep one row")
        projects[project] = name
    if not (model / "config.json").is_file():
        raise StageError(f"{model} has no config.json: run benchmarks/gpu/make_model_dir.py")
    for path in sorted(model.iterdir()):
        files.append((path, f"model/{path.name}"))
    if gguf is not None:
        if not gguf.is_file() or sha256_of(gguf) != GGUF_SHA256:
            raise StageError(f"{gguf} missing or not the pinned GGUF: run benchmarks/gpu/make_model_dir.py")
        files.append((gguf, f"gguf/{gguf.name}"))
        sums[f"gguf/{gguf.name}"] = GGUF_SHA256
    return files, sums


class PieceWriter(io.RawIOBase):
    """A file-like sink that cuts what is written into numbered pieces of fixed size."""

    def __init__(self, out: Path, piece_bytes: int) -> None:
        self.out, self.piece_bytes = out, piece_bytes
        self.pieces: list[dict] = []
        self._f = None
        self._h = None
        self._n = 0

    def _open(self) -> None:
        index = len(self.pieces) + 1
        folder = self.out / f"{index:02d}"
        folder.mkdir(parents=True)
        name = f"stage.tar.{index:02d}"
        self._f = (folder / name).open("wb")
        self._h = hashlib.sha256()
        self._n = 0
        self.pieces.append({"name": name, "folder": f"{index:02d}"})

    def _close_piece(self) -> None:
        if self._f is not None:
            self._f.close()
            self.pieces[-1].update(bytes=self._n, sha256=self._h.hexdigest())
            self._f = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            if self._f is None or self._n == self.piece_bytes:
                self._close_piece()
                self._open()
            take = min(len(view), self.piece_bytes - self._n)
            self._f.write(view[:take])
            self._h.update(view[:take])
            self._n += take
            view = view[take:]
        return len(data)

    def close(self) -> None:
        self._close_piece()
        super().close()


def stage(out: Path, wheels: Path, model: Path, groups: list[str], piece_mib: int,
          gguf: Path | None = None) -> list[dict]:
    base = tree_mib()
    if piece_mib + base > CALL_LIMIT_MIB:
        raise StageError(
            f"a {piece_mib} MiB piece + the {base:.1f} MiB working tree exceeds the "
            f"{CALL_LIMIT_MIB} MiB a call carries: use a smaller --piece-mib"
        )
    files, sums = collect(wheels, model, groups, gguf)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sink = PieceWriter(out, piece_mib * 2**20)
    whole = hashlib.sha256()

    class Tee(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            whole.update(data)
            return sink.write(data)

    with tarfile.open(fileobj=Tee(), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, name in files:
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with path.open("rb") as f:
                tar.addfile(info, f)
    sink.close()
    manifest = {
        "pieces": sink.pieces,
        "tar_sha256": whole.hexdigest(),
        "groups": groups,
        "wheels": sums,
    }
    for piece in sink.pieces:
        (out / piece["folder"] / "manifest.json").write_text(json.dumps(manifest, indent=1))
    total = sum(p["bytes"] for p in sink.pieces)
    print(f"{out}: {len(sink.pieces)} pieces, {total / 2**20:.1f} MiB "
          f"(working tree {base:.1f} MiB travels with each)")
    for piece in sink.pieces:
        print(f"  carry .gpu/pieces/{piece['folder']}  {piece['bytes'] / 2**20:5.1f} MiB")
    return sink.pieces


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    gpu = REPO / ".gpu"
    ap.add_argument("--out", type=Path, default=gpu / "pieces")
    ap.add_argument("--wheels", type=Path, default=gpu / "wheels")
    ap.add_argument("--model", type=Path, default=gpu / "model" / "qwen2.5-7b-instruct-shape")
    ap.add_argument("--piece-mib", type=int, default=56,
                    help="piece size; leaves room for the working tree in each call's 64 MiB")
    ap.add_argument("--no-docent", action="store_true",
                    help="vLLM only (Docent's own dependencies stay behind)")
    ap.add_argument("--gguf", action="store_true",
                    help=f"carry .gpu/{GGUF_NAME} too (real weights for functional_run.sh)")
    args = ap.parse_args(argv)
    groups = ["vllm"] if args.no_docent else ["vllm", "docent"]
    try:
        stage(args.out, args.wheels, args.model, groups, args.piece_mib, gpu / GGUF_NAME if args.gguf else None)
    except (StageError, WheelError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
