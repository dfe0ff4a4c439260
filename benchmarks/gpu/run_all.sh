#!/usr/bin/env bash
# One driver for the GPU machine, once the pieces are staged (README.md, "Staging"):
# receive the last piece(s), install, start vLLM on the dummy Qwen2.5-7B-Instruct shape,
# measure the raw server, then run Docent's own benchmarks against it if they exist.
#
#   bash benchmarks/gpu/run_all.sh [.gpu/pieces/NN ...]
#
# Idempotent within one warm machine: an installed stage is not reinstalled, and a
# server already answering on the port is reused (it was started with setsid, so it
# outlives the call that started it while the machine stays warm).
#
# Environment: DOCENT_GPU_STAGE (/root/stage), DOCENT_VLLM_PORT (8000),
#   PROBE_ARGS (extra vllm_probe.py arguments, e.g. "--sizes 2500,10300,41800,120500"),
#   SKIP_DOCENT=1 to stop after the raw figures. Results land in $OUT (the device tool's
#   output folder) or $DOCENT_GPU_STAGE/out.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
stage="${DOCENT_GPU_STAGE:-/root/stage}"
out="${OUT:-$stage/out}"
port="${DOCENT_VLLM_PORT:-8000}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
t_start=$(date +%s)
step() { echo "[run_all +$(( $(date +%s) - t_start ))s] $*" | tee -a "$out/timings.txt"; }

if (( $# )); then
  python3 benchmarks/gpu/device_stage.py recv "$@" || exit 1
  step "received $*"
fi
if [[ ! -f "$stage/env.sh" ]]; then
  python3 benchmarks/gpu/device_stage.py install || exit 1
  step "installed"
fi
# shellcheck disable=SC1091
source "$stage/env.sh"

ready() {
  python3 - "$port" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2)
except Exception:
    sys.exit(1)
EOF
}

if ready; then
  step "vLLM already answering on :$port"
else
  # setsid: the device tool ends a call's processes when it returns, except a new session.
  DOCENT_VLLM_PORT="$port" setsid nohup bash deploy/vllm/serve.sh --dummy \
    >"$stage/vllm.log" 2>&1 </dev/null &
  echo $! >"$stage/vllm.pid"
  step "vLLM starting (pid $(cat "$stage/vllm.pid"), log $stage/vllm.log)"
  # The production override path, checked while the server compiles (CPU only).
  python3 benchmarks/gpu/check_hf_overrides.py "$DOCENT_VLLM_MODEL" 2>&1 \
    | grep -E '^\{|hf-overrides check' | tee "$out/hf_overrides_check.txt"
  until ready; do
    if ! kill -0 "$(cat "$stage/vllm.pid")" 2>/dev/null; then
      step "vLLM exited during start"; tail -n 60 "$stage/vllm.log"; cp "$stage/vllm.log" "$out/"
      exit 1
    fi
    if (( $(date +%s) - t_start > 540 )); then
      step "vLLM not ready in time"; tail -n 30 "$stage/vllm.log"; exit 1
    fi
    sleep 2
  done
  step "vLLM ready"
  grep -E "KV cache|Maximum concurrency|max_model_len|graph|init engine|took" "$stage/vllm.log" \
    | tail -n 12
fi

# shellcheck disable=SC2086
python3 benchmarks/gpu/vllm_probe.py --base "http://127.0.0.1:$port" \
  --out "$out/raw_probe.jsonl" ${PROBE_ARGS:-}
step "raw probe done"

if [[ "${SKIP_DOCENT:-0}" != 1 ]]; then
  export DOCENT_LLM_BASE_URL="http://127.0.0.1:$port/v1"
  export DOCENT_LLM_MODEL="Qwen/Qwen2.5-7B-Instruct"
  export DOCENT_BENCH_OUT="$out"
  for bench in benchmarks/answer.py benchmarks/gpu/docent_vs_vllm.py; do
    if [[ -f "$bench" ]]; then
      python3 "$bench" 2>&1 | tee "$out/$(basename "$bench" .py).log"
      step "$bench exit ${PIPESTATUS[0]}"
    fi
  done
fi
cp "$stage/vllm.log" "$out/" 2>/dev/null
step "done (server left running on :$port for the next call)"
