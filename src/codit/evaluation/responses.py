"""Reading response files: the answers a model gave, in any of the formats codit meets.

A response record is one of:

* IFEval's format, ``{"prompt", "response"}``, optionally with a ``key`` or ``id``;
* TRL's prompt-completion format, ``{"prompt", "completion"}`` (strings or message lists);
* codit's generation records, ``{"id", "messages": [..., {"role": "assistant", ...}], "meta"}``.

Each becomes a ``Response`` with its key (or id), its prompt when known (the last user turn), and
the response text. Used by IFEval scoring and by the pairwise judge; knows nothing of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import DataError
from codit.io.invalid import Invalid, invalid_input
from codit.io.jsonl import iter_lines


@dataclass(frozen=True)
class Response:
    """One response read from a file: its key or id if it has one, its prompt if known."""

    key: str | None
    prompt: str | None
    response: str


def _from_messages(messages: Any, where: str) -> tuple[str | None, str]:
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        raise DataError(f"{where}: 'messages' must be a list of {{role, content}} turns")
    if messages[-1].get("role") != "assistant":
        raise DataError(f"{where}: the last turn of 'messages' is not the assistant's response")
    users = [
        m.get("content") for m in messages[:-1] if isinstance(m, dict) and m.get("role") == "user"
    ]
    return (users[-1] if users else None), str(messages[-1].get("content") or "")


def load_responses(path: str | Path) -> list[Response]:
    """Read responses in any of the formats the module docstring lists.

    Raises:
        DataError: a missing file, or records with no recognisable response: all are named.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"responses file {path} does not exist")
    out: list[Response] = []
    bad: list[Invalid] = []
    for line in iter_lines(path):
        if line.invalid is not None or line.value is None:
            bad.append(line.invalid or Invalid(line.where, "unreadable"))
            continue
        try:
            out.append(_response(line.value, line.where))
        except DataError as err:
            bad.append(Invalid(line.where, str(err).removeprefix(f"{line.where}: ")))
    if bad:
        raise invalid_input(path, bad)
    return out


def _response(row: dict[str, Any], where: str) -> Response:
    key = row.get("key", row.get("id"))
    key = None if key is None else str(key)
    if "response" in row:
        prompt, text = row.get("prompt"), row["response"]
    elif "completion" in row:
        completion = row["completion"]
        text = _from_messages(completion, where)[1] if isinstance(completion, list) else completion
        prompt = row.get("prompt")
        if isinstance(prompt, list):
            prompt = next(
                (
                    m.get("content")
                    for m in reversed(prompt)
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                None,
            )
    elif "messages" in row:
        prompt, text = _from_messages(row["messages"], where)
    else:
        raise DataError(
            f"no response; expected 'response', 'completion' or 'messages', found {sorted(row)}"
        )
    if not isinstance(text, str):
        raise DataError(f"the response must be a string, not {type(text).__name__}")
    return Response(key, prompt if isinstance(prompt, str) else None, text)
