"""Optional cross-encoder rerank of the fused candidates.

No reranker weights ship in any PyPI package, so the embedded default has none: the stage runs
only when ``settings.reranker_path`` names a local sentence-transformers CrossEncoder folder
(e.g. a copy of ``cross-encoder/ms-marco-MiniLM-L-6-v2`` or ``BAAI/bge-reranker-base``).
A path that is set but unusable is an error, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from retrieval.settings import Settings


class RerankerUnavailableError(RuntimeError):
    """A rerank was asked for but no usable cross-encoder is configured."""


class Reranker:
    def __init__(self, model, name: str):
        self._model = model
        self.name = name

    @classmethod
    def load(cls, path: Path, device: str = "cpu", max_length: int = 512) -> "Reranker":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise RerankerUnavailableError(
                f"DOCENT_RERANKER_PATH={path} is not a cross-encoder folder (no config.json there)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # Imported here: torch costs seconds that a search without rerank should not pay.
        from sentence_transformers import CrossEncoder

        try:
            model = CrossEncoder(str(path), device=device, max_length=max_length, local_files_only=True)
        except Exception as exc:  # the library raises many kinds; the user needs the path and cause
            raise RerankerUnavailableError(f"cannot load the cross-encoder at {path}: {exc}") from exc
        return cls(model, path.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Reranker | None":
        if settings.reranker_path is None:
            return None
        return cls.load(settings.reranker_path, settings.embedding_device)

    def score(self, question: str, texts: Sequence[str], batch_size: int = 16) -> list[float]:
        """Relevance of each text to ``question`` (higher is better), in input order."""
        if not texts:
            return []
        scores = self._model.predict([(question, t) for t in texts], batch_size=batch_size,
                                     show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(texts), -1)[:, -1]]
