"""Prompts for generation: the instruct model's chat template over a user turn.

The same token ids go to both models of a pair (CoDIT feeds the base model the instruct
model's template), so the prompt is built once, from the instruct tokenizer.
"""

from __future__ import annotations

from typing import Any

from codit.errors import ModelError


def with_system(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    """Prepend a system turn unless the conversation already starts with one."""
    if not system_prompt or (messages and messages[0]["role"] == "system"):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def require_chat_template(tokenizer: Any) -> None:
    """Fail with one sentence when the instruct tokenizer cannot build chat prompts."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "the instruct model's tokenizer has no chat template, so prompts cannot be built; "
            "use a post-trained (chat) model as --instruct"
        )


def prompt_ids(
    tokenizer: Any,
    messages: list[dict[str, str]],
    template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """Token ids of ``messages`` rendered with the chat template and the generation prompt.

    Args:
        tokenizer: the instruct model's tokenizer.
        messages: the conversation, ending with a user turn.
        template_kwargs: extra template variables, e.g. ``{"enable_thinking": False}``.
    """
    require_chat_template(tokenizer)
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **(template_kwargs or {})
    )
    # The template already writes BOS and friends where the model wants them.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
