"""Check, on the GPU machine, that `--hf-overrides` alone turns the published
Qwen2.5-7B-Instruct config (32768 positions, no rope scaling) into YaRN x4 at 131072
with rope_theta still 1e6.

Production loads the hub config, which lacks rope_scaling; the dummy shape's own
config already has it, so the server started by run_all.sh cannot tell the two apart.
This builds vLLM's model config from a copy without rope_scaling, with the same
override string deploy/vllm/serve.sh passes. No GPU memory is used.

Usage (after `source $STAGE/env.sh`):  python3 benchmarks/gpu/check_hf_overrides.py MODEL_DIR
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def serve_override() -> str:
    """The --hf-overrides value exactly as serve.sh would pass it."""
    out = subprocess.run(["bash", str(REPO / "deploy/vllm/serve.sh"), "--print"],
                         capture_output=True, text=True, check=True).stdout
    # Unquote bash's printf %q of the one argument after --hf-overrides.
    match = re.search(r"--hf-overrides (\S+)", out)
    if not match:
        raise SystemExit("serve.sh --print shows no --hf-overrides")
    return re.sub(r"\\(.)", r"\1", match.group(1))


def main(model_dir: str) -> int:
    from vllm.engine.arg_utils import EngineArgs

    override = serve_override()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp)
        for f in Path(model_dir).iterdir():
            shutil.copy(f, plain / f.name)
        cfg = json.loads((plain / "config.json").read_text())
        cfg.pop("rope_scaling", None)
        cfg["max_position_embeddings"] = 32768  # as published on the hub
        (plain / "config.json").write_text(json.dumps(cfg))
        args = EngineArgs(model=str(plain), hf_overrides=json.loads(override),
                          max_model_len=131072, load_format="dummy")
        try:
            mc = args.create_model_config()
        except Exception as exc:  # vLLM raises ValueError & co. when 131072 > derived max
            print(f"hf-overrides check: FAILED: {type(exc).__name__}: {exc}")
            return 1
        hf = mc.hf_config
        rope = getattr(hf, "rope_parameters", None) or getattr(hf, "rope_scaling", None)
        print(json.dumps({"step": "hf_overrides_check", "override": json.loads(override),
                          "max_model_len": mc.max_model_len, "rope": rope,
                          "max_position_embeddings": hf.max_position_embeddings}))
        ok = (mc.max_model_len == 131072 and bool(rope)
              and (rope.get("rope_type") or rope.get("type")) == "yarn"
              and rope.get("rope_theta") == 1e6)
    print("hf-overrides check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
