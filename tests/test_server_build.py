"""The local model server's build cache: keyed by CPU and build flags, trusted only after a
real completion, and a build that faults is reported, never cached as good."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from assistant.local_llm import server_build
from assistant.local_llm.server_build import (
    ServerBuildError,
    build_key,
    cached_llama_server,
    cpu_flags,
    last_build_failure,
    llama_server_path,
)
from assistant.local_llm.smoke import smoke_test
from tests.llm_server_fixture import TEST_MODEL, llama_server  # noqa: F401


def _fake_install(cache: Path, variant: str, *, smoke_ok: bool, flags: list[str] | None = None) -> Path:
    binary = llama_server_path(cache, variant)
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho version 1\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    info = {"smoke_ok": smoke_ok, "cpu_flags": flags if flags is not None else cpu_flags()}
    (binary.parent / "build_info.json").write_text(json.dumps(info))
    return binary


def test_the_cache_key_changes_with_the_cpu_and_the_build_flags():
    flags = cpu_flags()
    assert build_key("native", flags) == build_key("native", list(flags))
    assert build_key("native", flags) != build_key("native", [*flags, "amx_tile"])
    assert build_key("native", flags) != build_key("avx2", flags)


def test_native_build_never_compiles_amx_kernels():
    native = " ".join(server_build.VARIANTS["native"])
    assert "-mno-amx-tile" in native and "-mno-amx-int8" in native and "-mno-amx-bf16" in native
    assert "-DGGML_AMX_TILE=OFF" in server_build.VARIANTS["avx2"]


def test_only_a_smoke_tested_build_for_this_cpu_is_trusted(tmp_path):
    _fake_install(tmp_path / "a", "native", smoke_ok=False)
    assert cached_llama_server(tmp_path / "a") is None
    # A cache carried from another CPU: its folder is keyed differently, and even a copied
    # build_info with other flags is not believed.
    _fake_install(tmp_path / "b", "native", smoke_ok=True, flags=["sse2"])
    assert cached_llama_server(tmp_path / "b") is None
    good = _fake_install(tmp_path / "c", "avx2", smoke_ok=True)
    assert cached_llama_server(tmp_path / "c") == good


def test_a_server_that_dies_while_loading_fails_the_smoke_check(tmp_path):
    crash = tmp_path / "llama-server"
    crash.write_text("#!/bin/sh\necho 'ggml_backend_amx_mul_mat: about to fault' >&2\nkill -SEGV $$\n")
    crash.chmod(0o755)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ServerBuildError) as err:
        smoke_test(crash, model, log=lambda _line: None)
    assert "exited with code -11" in str(err.value)
    assert "ggml_backend_amx_mul_mat" in str(err.value)  # the server's own last lines travel along


def test_the_real_cached_build_passes_the_smoke_check(llama_server):  # noqa: F811
    from assistant.local_llm.model_files import gguf_path

    binary = cached_llama_server(llama_server.settings.cache_dir)
    assert binary is not None, "the server the suite runs on must be a smoke-tested build"
    info = json.loads((binary.parent / "build_info.json").read_text())
    assert info["smoke_ok"] is True and info["cpu_flags"] == cpu_flags()
    assert "-mno-amx-tile" in " ".join(info["cmake_flags"]) or "-DGGML_NATIVE=OFF" in info["cmake_flags"]
    result = smoke_test(binary, gguf_path(TEST_MODEL, llama_server.settings.cache_dir), log=lambda _l: None)
    assert result.startswith("completion answered")


def test_a_failed_build_is_remembered_for_doctor_and_answers_fall_back(tmp_path, monkeypatch):
    from assistant.health import _check_local
    from assistant.service import open_llm
    from retrieval.settings import Settings

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", cache_dir=cache, local_llm=TEST_MODEL,
                        local_llm_port=1)  # fmt: skip
    (server_build.server_dir(cache)).mkdir(parents=True)
    server_build._failure_file(cache).write_text(json.dumps({"cpu_flags": cpu_flags(), "message": "native: exited -11"}))
    assert last_build_failure(cache) == "native: exited -11"
    check = _check_local(settings)
    assert check.status == "fail" and "exited -11" in check.detail
    with open_llm(settings) as choice:
        assert choice.client is None and choice.source == "none"
        assert "Extractive" in choice.notice
    os.remove(server_build._failure_file(cache))
    assert last_build_failure(cache) is None
