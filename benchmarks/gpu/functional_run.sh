#!/usr/bin/env bash
# The functional run with real weights, on the GPU machine, once staged with `stage.py --gguf`:
# convert the Qwen2.5-Coder-0.5B GGUF to a bf16 folder (gguf_to_hf.py: vLLM 0.25 has no GGUF
# loader), serve it with the production launcher (deploy/vllm/serve.sh: 131072 tokens, YaRN,
# prefix caching), ingest data/samples with the embedding model on the GPU, then ask the
# questions in functional-questions.jsonl through Docent's answer path (functional_check.py).
#
#   bash benchmarks/gpu/functional_run.sh [.gpu/pieces/NN ...]
#
# Environment: DOCENT_GPU_STAGE (/root/stage), DOCENT_VLLM_PORT (8001), EAGER=1 adds
# --enforce-eager (skips torch.compile and CUDA graphs: a shorter start, same answers),
# EVAL_ANSWERS="benchmarks/answers/handset ..." also runs `docent eval-answers` on those sets.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
stage="${DOCENT_GPU_STAGE:-/root/stage}"
out="${OUT:-$stage/out}"
port="${DOCENT_VLLM_PORT:-8001}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
t_start=$(date +%s)
step() { echo "[functional +$(( $(date +%s) - t_start ))s] $*" | tee -a "$out/functional-timings.txt"; }

if (( $# )); then
  python3 benchmarks/gpu/device_stage.py recv "$@" || exit 1
fi
if [[ ! -f "$stage/env.sh" ]]; then
  python3 benchmarks/gpu/device_stage.py install || exit 1
  step "installed"
fi
# shellcheck disable=SC1091
source "$stage/env.sh"
gguf="$(ls "$stage"/gguf/*.gguf 2>/dev/null | head -n 1)"
[[ -n "$gguf" ]] || { step "no GGUF staged: run stage.py --gguf"; exit 1; }
model="$stage/qwen2.5-coder-0.5b-instruct"
if [[ ! -f "$model/model.safetensors" ]]; then
  python3 benchmarks/gpu/gguf_to_hf.py "$gguf" "$model" --tokenizer "$DOCENT_VLLM_MODEL" \
    | tee "$out/gguf_to_hf.json" || exit 1
  step "converted"
fi

served="Qwen/Qwen2.5-Coder-0.5B-Instruct"
extra=()
[[ "${EAGER:-0}" == 1 ]] && extra+=(--enforce-eager)
DOCENT_VLLM_MODEL="$model" DOCENT_LLM_MODEL="$served" DOCENT_VLLM_PORT="$port" \
  setsid nohup bash deploy/vllm/serve.sh "${extra[@]}" >"$stage/vllm-functional.log" 2>&1 </dev/null &
vllm_pid=$!
step "vLLM starting on :$port"
# The embedding model's one-time conversion runs on the CPU while vLLM loads.
python3 -m retrieval.e5_conversion 2>&1 | tail -n 1
step "e5 ready"
until python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "http://127.0.0.1:$port/v1/models" 2>/dev/null; do
  if ! kill -0 "$vllm_pid" 2>/dev/null; then
    step "vLLM exited during start"; tail -n 40 "$stage/vllm-functional.log"
    cp "$stage/vllm-functional.log" "$out/"; exit 1
  fi
  sleep 2
done
step "vLLM ready"

data="$stage/functional-data"
rm -rf "$data"
DOCENT_DATA_DIR="$data" DOCENT_EMBEDDING_DEVICE=cuda \
  python3 -m ui.cli.main ingest data/samples --collection Samples --no-progress 2>&1 | tail -n 2
step "ingested data/samples"
DOCENT_LLM_BASE_URL="http://127.0.0.1:$port/v1" DOCENT_LLM_MODEL="$served" DOCENT_LLM_TEMPERATURE=0 \
  python3 benchmarks/gpu/functional_check.py --data-dir "$data" --device cuda --out "$out/functional.json"
step "functional check exit $?"
for set in ${EVAL_ANSWERS:-}; do
  DOCENT_DATA_DIR="$stage/answers-data" DOCENT_EMBEDDING_DEVICE=cuda DOCENT_LLM_BASE_URL="http://127.0.0.1:$port/v1" \
    DOCENT_LLM_MODEL="$served" python3 -m ui.cli.main eval-answers "$set" --quiet \
    --out "$out/answers-$(basename "$set").json" 2>&1 | tail -n 12
  step "eval-answers $set exit ${PIPESTATUS[0]}"
done
cp "$stage/vllm-functional.log" "$out/" 2>/dev/null
