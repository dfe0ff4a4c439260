#!/usr/bin/env bash
# Regenerate requirements.lock from the working .venv (after changing pyproject.toml and
# checking that `make test` passes): every installed distribution pinned, with the sha256 of
# every file PyPI holds for that version. torch is left out on purpose: the Makefile installs
# the CPU build kept on these machines first (a resolver would pick PyPI's CUDA build and its
# nvidia-* wheels), and `pip check` then proves the locked set fits it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pip install -q uv
tmp=$(mktemp)
.venv/bin/pip freeze --exclude-editable | grep -v -E '^(torch|uv)==' > "$tmp"
.venv/bin/uv pip compile "$tmp" --no-deps --generate-hashes --python-version 3.11 \
    --index-url https://pypi.org/simple --no-header -o requirements.lock
sed -i "s|# via -r $tmp|# locked from a working environment (scripts/lock.sh)|" requirements.lock
rm -f "$tmp"
