"""The served pair: the loaded models behind their engine, and prompts turned into requests.

Prompts are rendered by ``codit.models.chat.prompt_ids``, the function ``codit generate`` uses,
so a chat request and a prompt file with the same conversation give the engine the same token
ids. ``ServedModel.requests`` turns one HTTP request into one engine ``Request`` per sample:

* a seeded request's engine key is a digest of its prompt, settings and the sample index, and
  its sample ``i`` draws with seed ``seed + i``: the same request samples the same text again;
* an unseeded request gets a fresh random seed, so repeated calls differ as clients expect.

This is the only serve module that builds the engine and its requests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from codit.decoding.config import RowSettings
from codit.decoding.engine import Request
from codit.serve.config import ServeConfig
from codit.serve.protocol import Sampling


@dataclass
class ServedModel:
    """A tokenizer and an engine with the incremental API, plus the facts the app needs.

    Attributes:
        tokenizer: the instruct model's tokenizer (renders prompts, decodes streams).
        engine: the engine (``add``/``cancel``/``step``/``has_work``).
        max_context: the pair's context length in tokens, or None when unknown.
        template_kwargs: extra chat-template variables for every prompt.
        info: the models' ids and facts, for ``/v1/models``.
    """

    tokenizer: Any
    engine: Any
    max_context: int | None
    template_kwargs: dict[str, Any]
    info: dict[str, Any]

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a conversation with the generation prompt, as ``codit generate`` builds."""
        from codit.models.chat import prompt_ids

        return prompt_ids(self.tokenizer, messages, self.template_kwargs)

    def text_prompt(self, text: str) -> list[int]:
        """Token ids of a raw completion prompt (the tokenizer's special tokens included)."""
        return list(self.tokenizer(text)["input_ids"])

    def requests(self, prompt: list[int], plan: Sampling, tag: str) -> list[Any]:
        """One engine request per sample of ``plan``; ``tag`` makes unseeded keys unique."""
        seed = plan.seed
        if seed is None:
            seed, stem = secrets.randbits(62), tag
        else:
            blob = json.dumps([prompt, plan.settings, plan.max_tokens, seed], default=list)
            stem = "s" + hashlib.sha256(blob.encode()).hexdigest()[:24]
        return [
            Request(
                f"{stem}/{i}",
                prompt,
                plan.max_tokens,
                RowSettings(**{**plan.settings, "seed": seed + i}),
            )
            for i in range(plan.n)
        ]


def load_served_model(config: ServeConfig) -> ServedModel:
    """Load the pair ``config`` names and build its engine (the weights load here)."""
    from codit.generation.completions import pair_engine
    from codit.models.chat import require_chat_template
    from codit.models.pair import load_pair

    pair = load_pair(
        config.instruct,
        config.base if config.decoding.contrastive else None,
        config.device,
        config.base_device,
        config.dtype,
        config.trust_remote_code,
    )
    require_chat_template(pair.tokenizer)
    engine = pair_engine(pair, config, continuous=True)  # a server always refills rows
    return ServedModel(
        pair.tokenizer, engine, engine.max_context, dict(config.chat_template_kwargs), pair.info()
    )
