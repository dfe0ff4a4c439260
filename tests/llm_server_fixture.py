"""Session fixture: a REAL llama-server with Qwen2.5-Coder-0.5B-Instruct on a free loopback port.

Register it for the whole suite in tests/conftest.py with
``pytest_plugins = ["tests.llm_server_fixture"]``.

The model file and the llama-server binary are prepared once per machine under the settings'
cache_dir (``DOCENT_CACHE_DIR``, default ~/.cache/docent); on a fresh machine that is a ~1 min
download plus a ~10 min compile, so CI runs ``python -m assistant.local_llm ensure --model
qwen2.5-coder-0.5b`` before pytest. If the model or the server cannot be had, the fixture FAILS:
skipping would let a CI run without any LLM test look green.
"""

from __future__ import annotations

import pytest

TEST_MODEL = "qwen2.5-coder-0.5b"
TEST_CONTEXT_TOKENS = 8192


# One server per pytest run even when several test modules import the fixture (each import is
# its own session-scoped definition to pytest): the first start is kept in the config's stash.
_SERVER = pytest.StashKey[object]()


@pytest.fixture(scope="session")
def llama_server(request, tmp_path_factory):
    stash = request.config.stash
    if _SERVER not in stash:
        stash[_SERVER] = _start(tmp_path_factory)
        if not isinstance(stash[_SERVER], str):
            request.config.add_cleanup(stash[_SERVER].stop)
    if isinstance(stash[_SERVER], str):  # the start failed: fail every user, start nothing again
        pytest.fail(stash[_SERVER], pytrace=False)
    return stash[_SERVER]


def _start(tmp_path_factory):
    from assistant.local_llm import LocalLLMServer, LocalServerError, ModelFileError, ServerBuildError, free_port
    from retrieval.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("llama_server"), local_llm=TEST_MODEL)
    server = LocalLLMServer(
        settings, model=TEST_MODEL, port=free_port(), context_tokens=TEST_CONTEXT_TOKENS, startup_timeout_s=180
    )
    try:
        return server.start()
    except (ModelFileError, ServerBuildError, LocalServerError) as exc:
        return f"the local llama-server for the LLM tests could not start: {exc}"
