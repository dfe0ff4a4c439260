# Two entry points for a fresh machine (see README): `make run` and `make test`.
# Everything heavy is cached per machine (venv here; models and llama-server in ~/.cache/docent).

VENV ?= .venv
PY := $(VENV)/bin/python
DOCENT := $(VENV)/bin/docent
PIP := $(PY) -m pip --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test models test-models bench clean-index

install: $(VENV)/.installed

# torch first, pinned to the CPU wheel kept on these machines: otherwise sentence-transformers
# pulls the registry's multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test,bench]"
	$(PY) -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ else 'expected the CPU build of torch, got ' + torch.__version__)"
	touch $@

# One-time, per machine: embedding model conversion, local LLM (GGUF) and llama-server build.
# `run` serves the 1.5B model (better answers); the tests use the 0.5B one (faster).
models: install
	$(PY) -m retrieval.e5_conversion
	$(PY) -m assistant.local_llm ensure

test-models: install
	$(PY) -m retrieval.e5_conversion
	$(PY) -m assistant.local_llm ensure --model qwen2.5-coder-0.5b

run: models
	$(DOCENT) ingest data/samples --collection Samples; test $$? -le 1
	$(DOCENT) ui --open

test: test-models
	bash scripts/ensure_browser.sh
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/retrieval.py

clean-index:
	rm -rf data/.docent
