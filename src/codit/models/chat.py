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


# What a template does with a system prompt, found by rendering (never by family name).
OWN_TURN = "own turn"
FIRST_USER_TURN = "folded into the first user turn"
LAST_USER_TURN = "folded into the last user turn"
DROPPED = "dropped by the template"
REJECTED = "rejected by the template"
TEMPLATE_DEFAULT = "none given; the template inserts a default"
NONE_GIVEN = "none"

_PROBE = "\u00a7SYSTEM-PROBE\u00a7"


def _render(tokenizer: Any, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> str:
    return str(
        tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **kwargs
        )
    )


def _only_in_first(a: str, b: str) -> str:
    """What ``a`` has where ``b`` differs, once their common prefix and suffix are cut."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end]


def system_handling(
    tokenizer: Any, template_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """How the chat template treats a system prompt, found by rendering probe conversations.

    A two-turn conversation is rendered with and without a probe system prompt and the two
    texts are compared: where the probe lands (before the first user turn or inside the last
    one), whether a turn boundary separates it from the user's text, and whether the template
    writes text of its own when no system prompt is given (Qwen2.5's default).

    Returns:
        ``{"placement": OWN_TURN | FIRST_USER_TURN | LAST_USER_TURN | DROPPED | REJECTED,
        "default_when_none": bool, "default_text": str}``.
    """
    kwargs = template_kwargs or {}
    u1, a1, u2 = "FIRST-USER-PROBE", "ASSISTANT-PROBE", "LAST-USER-PROBE"
    plain = [
        {"role": "user", "content": u1},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": u2},
    ]
    without = _render(tokenizer, plain, kwargs)
    try:
        with_probe = _render(tokenizer, [{"role": "system", "content": _PROBE}, *plain], kwargs)
    except Exception:  # a template may refuse system turns outright
        return {"placement": REJECTED, "default_when_none": False, "default_text": ""}
    default = _only_in_first(without, with_probe).strip()
    if _PROBE not in with_probe:
        placement = DROPPED
    else:
        at = with_probe.index(_PROBE) + len(_PROBE)
        if with_probe.index(_PROBE) > with_probe.index(u1):
            placement = (
                LAST_USER_TURN if with_probe.index(_PROBE) < with_probe.index(u2) else DROPPED
            )
        else:
            # between the probe and the user's text: only whitespace means the same turn
            between = with_probe[at : with_probe.index(u1)]
            placement = FIRST_USER_TURN if not between.strip() else OWN_TURN
    return {"placement": placement, "default_when_none": bool(default), "default_text": default}


def system_meta(messages: list[dict[str, str]], handling: dict[str, Any]) -> str:
    """The record's ``meta["system_turn"]``: what became of this conversation's system prompt."""
    if messages and messages[0]["role"] == "system":
        return str(handling["placement"])
    return TEMPLATE_DEFAULT if handling["default_when_none"] else NONE_GIVEN
