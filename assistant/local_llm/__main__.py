"""``python -m assistant.local_llm ensure|serve`` — prepare or run the embedded model server.

``ensure`` does the one-time work (fetch and join the GGUF, build llama-server) with progress
on stderr and prints the two resulting paths on stdout; ``serve`` runs the server in the
foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from assistant.local_llm.model_files import MODELS, ModelFileError, ensure_gguf
from assistant.local_llm.server import LocalLLMServer, LocalServerError
from assistant.local_llm.server_build import ServerBuildError, ensure_llama_server
from retrieval.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.local_llm", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("ensure", "fetch the model and build llama-server (once per machine)"),
                        ("serve", "run llama-server in the foreground")):  # fmt: skip
        p = sub.add_parser(name, help=help_)
        p.add_argument("--model", choices=sorted(MODELS), help="default: DOCENT_LOCAL_LLM")
        if name == "ensure":
            p.add_argument("--verify", action="store_true", help="re-hash the model file against its pinned sha256")
        else:
            p.add_argument("--port", type=int, help="default: DOCENT_LOCAL_LLM_PORT")
    args = parser.parse_args(argv)
    settings = Settings()
    model = args.model or settings.local_llm
    if model == "none":
        print("DOCENT_LOCAL_LLM is 'none'; pass --model to choose one", file=sys.stderr)
        return 2
    try:
        if args.command == "ensure":
            gguf = ensure_gguf(model, settings.cache_dir, verify=args.verify)
            print(gguf)
            print(settings.local_llm_server_bin or ensure_llama_server(settings.cache_dir, smoke_gguf=gguf))
        else:
            LocalLLMServer(settings, model=model, port=args.port).serve_forever()
    except (ModelFileError, ServerBuildError, LocalServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
