"""Shared fixtures: real embedding model (loaded once per session), real embedded index per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from retrieval.settings import Settings  # noqa: E402

# A real llama-server with the 0.5B Qwen model, started once per session (see that module).
pytest_plugins = ["tests.llm_server_fixture"]

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def make_settings(data_dir: Path, **overrides) -> Settings:
    # _env_file=None: a developer's .env must not change what the tests exercise.
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    from retrieval.embeddings import Embedder

    return Embedder.from_settings(make_settings(tmp_path_factory.mktemp("embedder")))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path / "docent")


@pytest.fixture
def workspace(settings, embedder):
    from retrieval.workspace import Workspace

    with Workspace(settings, embedder=embedder) as ws:
        yield ws
