"""Chat templates a student can be trained with (TRL's ``assistant_only_loss``).

TRL masks everything but the assistant's turns by the ``{% generation %}`` blocks of the chat
template. A pretrained base model has no template at all (Llama-3.1-8B), and many instruct
templates have no such blocks. ``ensure_training_template`` gives a tokenizer one that has:

- a template with ``{% generation %}`` blocks is kept;
- a template TRL knows how to patch (Qwen3, Llama 3, ...) is replaced by TRL's patched copy;
- no template: codit's plain ``### User:`` / ``### Assistant:`` template below, whose assistant
  turn ends with the tokenizer's EOS token, so the trained model stops where generation stops.

Any other template cannot be marked safely; use ``codit train sft``, which trains the last
answer as a completion instead (``training.sft.loss_mask``).
"""

from __future__ import annotations

import re
from typing import Any

from codit.errors import ModelError

# It ends the assistant turn with the tokenizer's EOS, and its {% generation %} markers let TRL
# mask everything but the answers.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '### Assistant:\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n\n' }}"
    "{% else %}{{ '### ' + message['role'] | capitalize + ':\n' + message['content'] + '\n\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}"
)

GENERATION_BLOCK = re.compile(r"{%-?\s*generation\s*-?%}")


def has_generation_blocks(template: Any) -> bool:
    return isinstance(template, str) and bool(GENERATION_BLOCK.search(template))


def ensure_training_template(tokenizer: Any) -> str:
    """Give ``tokenizer`` a chat template that TRL's ``assistant_only_loss`` can train on.

    Args:
        tokenizer: the student's tokenizer; its ``chat_template`` is set in place.

    Returns:
        Where the template came from: ``model`` (kept), ``trl`` (TRL's patched copy of the
        model's template) or ``codit fallback`` (the model had none).

    Raises:
        ModelError: the model's template has no ``{% generation %}`` blocks and TRL cannot
            patch it.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        return "codit fallback"
    if has_generation_blocks(template):
        return "model"
    from trl.chat_template_utils import get_training_chat_template

    try:
        patched = get_training_chat_template(tokenizer)  # None: nothing to patch
    except ValueError as err:
        raise ModelError(
            "this chat template has no {% generation %} blocks and TRL cannot add them, so "
            "assistant_only_loss cannot mask it; add the blocks to the template, or train with "
            "`codit train sft`, which trains the last answer as a completion"
        ) from err
    if patched is None:
        return "model"
    tokenizer.chat_template = patched
    return "trl"
