"""Keep third-party notices out of codit's output: one call at the start of a command.

Commands print their own progress and results; transformers' loading and saving bars, TRL's
tokenizing bars (through ``datasets``) and warnings about other libraries' use of deprecated
APIs (which a user can do nothing about) would bury them. Warnings about the user's own input
still come through codit's messages.
"""

from __future__ import annotations

import warnings

# Deprecations raised inside a dependency calling another one, not by anything codit or its user
# passes: peft's PeftModel reads ``model.is_gradient_checkpointing`` (transformers 5 renamed it).
THIRD_PARTY_DEPRECATIONS = (r"`is_gradient_checkpointing` is deprecated",)


def quiet_transformers() -> None:
    """Silence transformers' and datasets' bars and notices, and known third-party deprecations."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    for message in THIRD_PARTY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
