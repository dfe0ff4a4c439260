#!/usr/bin/env bash
# Start Docent's production LLM server: vLLM serving Qwen2.5-7B-Instruct at 131072 tokens.
#
#   deploy/vllm/serve.sh [--dummy] [--print] [extra vllm serve args...]
#
# Environment (all optional):
#   DOCENT_VLLM_MODEL   what to load: a hub id or a local folder   (Qwen/Qwen2.5-7B-Instruct)
#   DOCENT_LLM_MODEL    name clients ask for; Docent's settings default to the same value
#   DOCENT_VLLM_HOST    listen address (127.0.0.1; set 0.0.0.0 behind a firewall/proxy)
#   DOCENT_VLLM_PORT    listen port (8000). Not VLLM_PORT: vLLM reads that one itself
#                       for its internal ports.
#   DOCENT_LLM_API_KEY  if set (and not EMPTY), clients must send it as a bearer token
#   VLLM_BIN            the vllm executable (vllm); e.g. "python3 -m vllm.entrypoints.cli.main"
#
# --dummy   random weights (--load-format dummy) for a local folder that holds only
#           config + tokenizer (benchmarks/gpu/make_model_dir.py): real speed, no weights.
# --print   print the command instead of running it.
set -euo pipefail

dummy=0
print=0
extra=()
for arg in "$@"; do
  case "$arg" in
    --dummy) dummy=1 ;;
    --print) print=1 ;;
    *) extra+=("$arg") ;;
  esac
done

model="${DOCENT_VLLM_MODEL:-Qwen/Qwen2.5-7B-Instruct}"
served="${DOCENT_LLM_MODEL:-Qwen/Qwen2.5-7B-Instruct}"
host="${DOCENT_VLLM_HOST:-127.0.0.1}"
port="${DOCENT_VLLM_PORT:-8000}"
read -r -a vllm_bin <<<"${VLLM_BIN:-vllm}"

# Qwen2.5-7B-Instruct is trained at 32768 positions; YaRN with factor 4 over those
# 32768 stretches it to 131072, as Qwen documents. The published config.json has no
# rope scaling, so it is applied here; deploy/vllm/qwen2.5-7b-instruct-config.json
# carries the same values (as legacy `rope_scaling`) for the dummy shape.
# The key is `rope_parameters` WITH rope_theta, not Qwen's documented `rope_scaling`:
# vLLM 0.25 needs transformers >= 5, where setting `rope_scaling` on a loaded config
# replaces rope_parameters and leaves rope_theta=None (seen with transformers 5.23),
# and vLLM 0.25's Qwen2 only fills in a *missing* rope_theta (qwen2.py,
# set_default_rope_theta), so the 1e6 base would be lost.
yarn='{"rope_parameters":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768,"rope_theta":1000000.0},"max_position_embeddings":131072}'

cmd=("${vllm_bin[@]}" serve "$model"
  # Clients (Docent's DOCENT_LLM_MODEL) name the model, not the folder it came from.
  --served-model-name "$served"
  --host "$host" --port "$port"
  # Whole documents go into one prompt for summaries: the full 128k window.
  --max-model-len 131072
  --hf-overrides "$yarn"
  # Docent's prompts share a long fixed prefix (system prompt + instructions), and
  # follow-up questions repeat the same retrieved passages: cached prefixes skip that
  # prefill (measured 0.283 s -> 0.062 s TTFT at 10k tokens).
  --enable-prefix-caching
  # Tool calls: Qwen2.5's chat template emits <tool_call>{json}</tool_call>, which is
  # the Hermes format; auto tool choice lets the model decide when to call.
  --enable-auto-tool-choice --tool-call-parser hermes
  # The weights' own precision; no quantisation in production.
  --dtype bfloat16
)
if [[ "$dummy" == 1 ]]; then
  # Random weights of the configured shape: speed figures without the weights.
  cmd+=(--load-format dummy)
fi
if [[ -n "${DOCENT_LLM_API_KEY:-}" && "${DOCENT_LLM_API_KEY}" != "EMPTY" ]]; then
  cmd+=(--api-key "$DOCENT_LLM_API_KEY")
fi
cmd+=("${extra[@]+"${extra[@]}"}")

if [[ "$print" == 1 ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
