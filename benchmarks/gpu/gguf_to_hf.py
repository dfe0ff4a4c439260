"""Turn the Qwen2.5 GGUF the product tests with into a Hugging Face folder vLLM can serve.

vLLM 0.25.0 has no GGUF loader any more (its wheel carries no ``gguf_loader.py``; serving
``FILE.gguf`` fails in ``maybe_override_with_speculators``), and transformers' own GGUF
import needs ``accelerate``, which the GPU machine lacks. The GGUF is small, so this script
dequantizes it with the ``gguf`` package (the reference reader published by llama.cpp) and
writes bf16 safetensors with the Qwen2 tensor names plus a ``config.json`` built from the
GGUF's own metadata. Only the name map and the config are written by hand: no library
maps llama.cpp's Qwen2 names back without ``accelerate``.

Usage (on the GPU machine, or here to check):
    python benchmarks/gpu/gguf_to_hf.py MODEL.gguf OUT_DIR [--tokenizer DIR]
``--tokenizer`` copies the tokenizer files ``make_model_dir.py`` built (the same Qwen2.5
tokenizer and chat template) into OUT_DIR.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

# llama.cpp's per-layer tensor names -> Hugging Face Qwen2 names (llama.cpp does not permute
# Qwen2's q/k projections, unlike Llama's, so a rename is the whole mapping).
_LAYER = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight", "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight"}


class ConversionError(RuntimeError):
    """The GGUF is not a Qwen2 model this script knows how to map."""


def hf_name(name: str) -> str:
    if name in _TOP:
        return _TOP[name]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", name)
    if not m or m.group(2) not in _LAYER:
        raise ConversionError(f"unknown tensor {name!r}")
    return f"model.layers.{m.group(1)}.{_LAYER[m.group(2)]}"


def _field(reader, key: str):
    field = reader.fields.get(key)
    if field is None:
        raise ConversionError(f"GGUF lacks {key}")
    return field.contents()


def hf_config(reader, vocab: int, tied: bool) -> dict:
    arch = _field(reader, "general.architecture")
    if arch != "qwen2":
        raise ConversionError(f"architecture {arch!r}, expected qwen2")
    g = lambda k: _field(reader, f"qwen2.{k}")  # noqa: E731
    hidden, heads = int(g("embedding_length")), int(g("attention.head_count"))
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "torch_dtype": "bfloat16",
        "hidden_size": hidden, "intermediate_size": int(g("feed_forward_length")),
        "num_hidden_layers": int(g("block_count")), "num_attention_heads": heads,
        "num_key_value_heads": int(g("attention.head_count_kv")), "head_dim": hidden // heads,
        "max_position_embeddings": int(g("context_length")), "rope_theta": float(g("rope.freq_base")),
        "rms_norm_eps": float(g("attention.layer_norm_rms_epsilon")), "vocab_size": vocab,
        "hidden_act": "silu", "tie_word_embeddings": tied, "use_sliding_window": False,
        "bos_token_id": int(_field(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(_field(reader, "tokenizer.ggml.eos_token_id")),
    }


def convert(gguf_file: Path, out: Path, tokenizer: Path | None = None) -> dict:
    import torch
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.torch import save_file

    start = time.monotonic()
    reader = GGUFReader(str(gguf_file))
    tensors: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists the fastest-moving dim first
        tensors[hf_name(t.name)] = torch.from_numpy(np.array(values, dtype=np.float32)
                                                    .reshape(shape)).to(torch.bfloat16)
    tied = "lm_head.weight" not in tensors
    config = hf_config(reader, tensors["model.embed_tokens.weight"].shape[0], tied)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=1))
    if tokenizer is not None:
        for path in tokenizer.iterdir():
            if path.name.startswith("tokenizer") or path.name == "generation_config.json":
                shutil.copy2(path, out / path.name)
    params = sum(v.numel() for v in tensors.values())
    return {"tensors": len(tensors), "parameters": params, "tied": tied, "seconds": round(time.monotonic() - start, 1),
            "bytes": (out / "model.safetensors").stat().st_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("gguf", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer", type=Path)
    args = ap.parse_args(argv)
    try:
        print(json.dumps(convert(args.gguf, args.out, args.tokenizer)))
    except ConversionError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
