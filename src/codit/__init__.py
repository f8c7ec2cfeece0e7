"""codit: instruction-tuning data and training with contrastive methods.

The public entry points are imported lazily so that `import codit` (and `codit --help`) stay
instant: torch and transformers load only when a command needs them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "generate", "GenerateConfig", "generate_texts"]


def __getattr__(name: str) -> Any:
    if name == "generate":
        from codit.generation.run import generate

        return generate
    if name == "generate_texts":
        from codit.generation.texts import generate_texts

        return generate_texts
    if name == "GenerateConfig":
        from codit.generation.config import GenerateConfig

        return GenerateConfig
    raise AttributeError(f"module 'codit' has no attribute {name!r}")
