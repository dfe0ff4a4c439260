"""Device side of the staging: receive pieces, rejoin, verify, install. Stdlib only.

Runs on the GPU machine with its own python3 (3.12, torch 2.11.0), one step per call:

    python3 benchmarks/gpu/device_stage.py recv .gpu/pieces/03     # each call: one piece
    python3 benchmarks/gpu/device_stage.py install                 # once all have come
    python3 benchmarks/gpu/device_stage.py preflight               # versions, GPU, disk

Pieces are moved out of the repository copy into STAGE (default /root/stage), which
lives as long as the machine stays warm; the repository copy is re-synced by each call.
`install` writes STAGE/env.sh; `source` it to get PYTHONPATH and the vLLM variables.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

STAGE = Path(os.environ.get("DOCENT_GPU_STAGE", "/root/stage"))


class StageError(RuntimeError):
    """A piece or wheel is missing or does not match the manifest."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise StageError(f"no manifest.json in {folder}")
    return json.loads(path.read_text())


def recv(folders: list[Path]) -> None:
    pieces_dir = STAGE / "pieces"
    pieces_dir.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        manifest = load_manifest(folder)
        known = {p["name"]: p for p in manifest["pieces"]}
        for path in sorted(folder.glob("stage.tar.*")):
            want = known.get(path.name)
            if want is None:
                raise StageError(f"{path.name} is not in the manifest")
            digest = sha256_of(path)
            if digest != want["sha256"]:
                raise StageError(f"{path.name}: sha256 {digest} != {want['sha256']} (transfer broke?)")
            shutil.move(str(path), pieces_dir / path.name)
        shutil.copyfile(folder / "manifest.json", STAGE / "manifest.json")
    manifest = load_manifest(STAGE)
    have = sorted(p.name for p in pieces_dir.glob("stage.tar.*"))
    missing = [p["name"] for p in manifest["pieces"] if p["name"] not in have]
    print(f"stage {STAGE}: {len(have)}/{len(manifest['pieces'])} pieces"
          + (f"; missing {missing}" if missing else "; all here"))


def install() -> None:
    t0 = time.monotonic()
    manifest = load_manifest(STAGE)
    pieces = [STAGE / "pieces" / p["name"] for p in manifest["pieces"]]
    missing = [p.name for p in pieces if not p.is_file()]
    if missing:
        raise StageError(f"pieces not yet received: {missing}")
    extract = STAGE / "x"
    if extract.exists():
        shutil.rmtree(extract)
    extract.mkdir()

    class Joined:
        """The pieces read back to back, hashed on the way through."""

        def __init__(self) -> None:
            self.h = hashlib.sha256()
            self.files = iter(pieces)
            self.cur = None

        def read(self, n: int = -1) -> bytes:
            while True:
                if self.cur is None:
                    nxt = next(self.files, None)
                    if nxt is None:
                        return b""
                    self.cur = nxt.open("rb")
                data = self.cur.read(n if n and n > 0 else 1 << 20)
                if data:
                    self.h.update(data)
                    return data
                self.cur.close()
                self.cur = None

    joined = Joined()
    with tarfile.open(fileobj=joined, mode="r|") as tar:
        tar.extractall(extract, filter="data")
    while joined.read(1 << 20):  # hash any tar padding left unread
        pass
    if joined.h.hexdigest() != manifest["tar_sha256"]:
        raise StageError("rejoined stream does not match tar_sha256")
    for name, sha in manifest["wheels"].items():
        path = extract / name
        if not path.is_file() or sha256_of(path) != sha:
            raise StageError(f"{name}: missing or sha256 mismatch after rejoin")
    t1 = time.monotonic()
    print(f"rejoined + verified {len(manifest['wheels'])} files in {t1 - t0:.1f} s")

    site = STAGE / "site"
    if site.exists():
        shutil.rmtree(site)
    for gguf in (extract / "gguf").glob("*.gguf"):  # real weights for functional_run.sh
        (STAGE / "gguf").mkdir(exist_ok=True)
        shutil.move(str(gguf), STAGE / "gguf" / gguf.name)
    wheels = sorted(str(p) for p in (extract / "wheels").glob("*/*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         "--no-compile", "--no-cache-dir", "--root-user-action=ignore", "--target", str(site), *wheels],
        check=True,
    )
    t2 = time.monotonic()
    print(f"pip installed {len(wheels)} wheels into {site} in {t2 - t1:.1f} s")

    model = STAGE / "model"
    if model.exists():
        shutil.rmtree(model)
    shutil.move(str(extract / "model"), model)
    (STAGE / "env.sh").write_text(
        f'export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'export PATH="{site}/bin:$PATH"\n'
        # No flashinfer wheel travels; vLLM would otherwise try its sampler kernels.
        "export VLLM_USE_FLASHINFER_SAMPLER=0\n"
        "export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1\n"
        f'export DOCENT_VLLM_MODEL="{model}"\n'
    )
    print(f"model folder {model}; source {STAGE}/env.sh")


def preflight() -> None:
    names = [
        "torch", "transformers", "tokenizers", "sentence-transformers", "numpy", "httpx",
        "anyio", "grpcio", "protobuf", "portalocker", "urllib3", "requests", "pyyaml",
        "tiktoken", "tqdm", "prometheus-client", "lxml", "packaging", "typing-extensions",
        "xxhash", "pydantic", "openai", "h2", "jinja2", "huggingface-hub", "triton",
    ]
    print(sys.version.split()[0], sys.executable)
    subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], check=False,
                   stdout=open(STAGE / "pip-list.txt", "w"))
    have = {}
    for line in (STAGE / "pip-list.txt").read_text().splitlines():
        if "==" in line:
            n, v = line.split("==", 1)
            have[n.lower().replace("_", "-")] = v
    print(" ".join(f"{n}={have.get(n, '-')}" for n in names))
    subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                    "--format=csv,noheader"], check=False)
    subprocess.run(["df", "-h", str(STAGE), "/tmp"], check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("folders", nargs="+", type=Path)
    sub.add_parser("install")
    sub.add_parser("preflight")
    args = ap.parse_args(argv)
    STAGE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        if args.cmd == "recv":
            recv(args.folders)
        elif args.cmd == "install":
            install()
        else:
            preflight()
    except StageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"[{args.cmd}] {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
