"""Reading and checking training records before any model loads.

Three record kinds, all one JSON object per line, read as codit writes them:

- SFT: TRL's conversational ``{"id", "messages": [..., {"role": "assistant", ...}], "meta"}``,
  or TRL's ``{"prompt", "completion"}`` (strings or message lists);
- preference (DPO): ``{"prompt", "chosen", "rejected", "meta"}``, strings or message lists;
- CoIN pair: an SFT ``messages`` record plus ``"paraphrase"``, the last user turn reworded;
  ``meta.group`` (optional) marks records whose neighbours are hard negatives.

Every loader returns records in one normal form, conversational (message lists), and drops
``id``/``meta``, which trainers do not read. A malformed line raises ``DataError`` naming the
file, the line and the fields found. This module knows nothing about tokenizers or models.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.invalid import Invalid, invalid_input
from codit.io.jsonl import iter_lines
from codit.io.prompts import ROLES

Messages = list[dict[str, str]]


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL file with their 1-based line numbers; blank lines skipped.

    Raises:
        DataError: a missing or empty file, or bad lines (every one of them is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    rows, bad = [], []
    for line in iter_lines(path):
        if line.invalid is not None or line.value is None:
            bad.append(line.invalid or Invalid(line.where, "unreadable"))
        else:
            rows.append((line.number, line.value))
    if bad:
        raise invalid_input(path, bad)
    if not rows:
        raise DataError(f"{path} holds no records")
    return rows


def _messages_problem(value: Any) -> str | None:
    """Why ``value`` is not a list of {role, content} turns, or None."""
    if not isinstance(value, list) or not value:
        return "is not a non-empty list of messages"
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            return f"turn {i} has no string 'content'"
        if turn.get("role") not in ROLES:
            return f"turn {i} has role {turn.get('role')!r}, not one of {', '.join(ROLES)}"
    return None


def _as_messages(value: Any, role: str) -> Messages | None:
    """A string becomes one turn of ``role``; a valid message list is kept (role/content only)."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if _messages_problem(value) is None:
        return [{"role": t["role"], "content": t["content"]} for t in value]
    return None


def _fail(
    path: Path, number: int, expected: str, record: dict[str, Any], why: str = ""
) -> DataError:
    found = ", ".join(sorted(record)) or "none"
    detail = f" ({why})" if why else ""
    return DataError(f"{path} line {number}: expected {expected}{detail}; found fields: {found}")


SFT_SHAPE = (
    "an SFT record with 'messages' ending in an assistant turn, or 'prompt' and 'completion'"
)


def load_sft(path: str | Path) -> list[dict[str, Messages]]:
    """SFT records as ``{"messages": [...]}``, the last turn the assistant's answer."""
    path = Path(path)
    out = []
    for number, record in read_jsonl(path):
        if "messages" in record:
            messages = _as_messages(record["messages"], "user")
            why = _messages_problem(record["messages"]) if messages is None else None
        elif "prompt" in record and "completion" in record:
            prompt = _as_messages(record["prompt"], "user")
            completion = _as_messages(record["completion"], "assistant")
            messages = prompt + completion if prompt and completion else None
            why = "'prompt' or 'completion' is neither a string nor a message list"
        else:
            messages, why = None, None
        if messages is None:
            raise _fail(path, number, SFT_SHAPE, record, why or "")
        if messages[-1]["role"] != "assistant":
            raise _fail(path, number, SFT_SHAPE, record, "the last turn is not the assistant's")
        out.append({"messages": messages})
    return out


PREFERENCE_SHAPE = (
    "a preference record with 'prompt', 'chosen' and 'rejected' (strings or message lists)"
)


def load_preferences(path: str | Path) -> list[dict[str, Messages]]:
    """Preference records as ``{"prompt": [...], "chosen": [assistant], "rejected": [assistant]}``."""
    path = Path(path)
    out = []
    for number, record in read_jsonl(path):
        if not {"prompt", "chosen", "rejected"} <= set(record):
            raise _fail(path, number, PREFERENCE_SHAPE, record)
        prompt = _as_messages(record["prompt"], "user")
        chosen = _as_messages(record["chosen"], "assistant")
        rejected = _as_messages(record["rejected"], "assistant")
        if prompt is None or chosen is None or rejected is None:
            raise _fail(
                path,
                number,
                PREFERENCE_SHAPE,
                record,
                "a field is neither a string nor a message list",
            )
        if prompt[-1]["role"] == "assistant":
            raise _fail(
                path, number, PREFERENCE_SHAPE, record, "the prompt ends with an assistant turn"
            )
        if record["chosen"] == record["rejected"]:
            raise _fail(
                path, number, PREFERENCE_SHAPE, record, "'chosen' and 'rejected' are the same"
            )
        out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return out


COIN_SHAPE = (
    "a CoIN pair with 'messages' (ending in an assistant turn after a user turn) and "
    "'paraphrase' (the user turn reworded)"
)


def load_coin_pairs(path: str | Path) -> list[dict[str, Any]]:
    """CoIN pairs as ``{"messages", "paraphrased", "group"}``.

    ``paraphrased`` is ``messages`` with its last user turn replaced by the paraphrase; ``group``
    is ``meta.group`` (a string, or None when absent).
    """
    path = Path(path)
    out = []
    for number, record in read_jsonl(path):
        messages = _as_messages(record.get("messages"), "user")
        paraphrase = record.get("paraphrase")
        if messages is None or not isinstance(paraphrase, str) or not paraphrase.strip():
            raise _fail(path, number, COIN_SHAPE, record)
        if (
            len(messages) < 2
            or messages[-1]["role"] != "assistant"
            or messages[-2]["role"] != "user"
        ):
            raise _fail(
                path, number, COIN_SHAPE, record, "the last two turns are not user, assistant"
            )
        paraphrased = [*messages[:-2], {"role": "user", "content": paraphrase}, messages[-1]]
        meta = record["meta"] if isinstance(record.get("meta"), dict) else {}
        group = meta.get("group")
        out.append(
            {
                "messages": messages,
                "paraphrased": paraphrased,
                "group": None if group is None else str(group),
            }
        )
    return out


def split(records: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Hold out ``fraction`` of the records (at least one when fraction > 0), chosen by ``seed``.

    Returns:
        (train, eval), each in the original order.
    """
    if fraction <= 0:
        return list(records), []
    n_eval = max(1, round(len(records) * fraction))
    if n_eval >= len(records):
        raise DataError(f"--eval-split {fraction} leaves no training records out of {len(records)}")
    held = set(random.Random(seed).sample(range(len(records)), n_eval))
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [r for i, r in enumerate(records) if i in held]
