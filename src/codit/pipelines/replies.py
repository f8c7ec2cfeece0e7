"""Reading what an LLM wrote: JSON, labelled fields, lists and numbers out of free text.

The prompted pipelines ask for JSON (as structured output where the server supports it, and in
the prompt's words everywhere), but a reply may come as JSON inside a code fence, JSON with a
sentence around it, or plain text with labels ("Use case: ...") and numbered lists. These pure
functions find what they can; the per-prompt parsers (``codeclm_parse``, ``ecd_parse``) decide
what is enough and raise ``ParseError`` when it is not. Nothing here calls a model.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_ITEM = re.compile(r"^\s*(?:\d{1,3}\s*[.):]|\(\d{1,3}\)|[-*•+])\s+(?P<item>\S.*)$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CHATTER = re.compile(r"^(i|i'm|i am|sorry|sure|okay|ok|here|as an ai)\b", re.IGNORECASE)
_MAX_JSON_STARTS = 200  # where to give up looking for embedded JSON in a long reply


class ParseError(ValueError):
    """A reply does not hold what its prompt asked for; the message says what is missing."""


def json_value(text: str) -> Any | None:
    """The JSON in a reply: the whole text, a fenced block, or the first object embedded in prose.

    Returns the first JSON object found, else the first JSON array, else None.
    """
    stripped = text.strip()
    for candidate in [stripped, *(m.group(1).strip() for m in _FENCE.finditer(text))]:
        if candidate[:1] in ("{", "["):
            try:
                return json.loads(candidate)
            except json.JSONDecodeError:
                pass
    decoder = json.JSONDecoder()
    first_list = None
    starts = [i for i, ch in enumerate(text) if ch in "{["][:_MAX_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and first_list is None:
            first_list = value
    return first_list


def json_field(text: str, *names: str) -> Any | None:
    """The first of ``names`` present in the reply's JSON object (keys matched loosely), or None."""
    value = json_value(text)
    if not isinstance(value, dict):
        return None
    loose = {_key(k): v for k, v in value.items()}
    for name in names:
        if _key(name) in loose:
            return loose[_key(name)]
    return None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(label).replace(r"\ ", r"[\s_-]*") for label in labels)
    return re.compile(
        r"^[\s>#*_-]*(?:" + names + r")(?:\s*#?\d{1,2})?[\s*_]*[:：=][\s*_]*(?P<value>.*?)[\s*_]*$",
        re.IGNORECASE | re.MULTILINE,
    )


def labelled(text: str, *labels: str) -> str | None:
    """The value after the first ``Label:`` line (any of ``labels``), or None.

    Matching ignores case, markdown emphasis and a number after the label ("Rubric 2:"). A label
    alone on its line takes the lines below it, up to a blank line or the next label.
    """
    values = labelled_all(text, *labels)
    return values[0] if values else None


def labelled_all(text: str, *labels: str) -> list[str]:
    """Every value of ``Label:`` lines (any of ``labels``), in order; empty values skipped."""
    pattern = _label_pattern(labels)
    any_label = re.compile(r"^[\s>#*_-]*[A-Za-z][A-Za-z _-]{0,30}(?:\s*#?\d{1,2})?[\s*_]*[:：]")
    lines = text.splitlines()
    values = []
    for n, line in enumerate(lines):
        match = pattern.match(line)
        if not match:
            continue
        value = match.group("value").strip()
        if not value:  # the value is on the lines below
            below: list[str] = []
            for following in lines[n + 1 :]:
                if any_label.match(following):
                    break
                if not following.strip():
                    if below:
                        break
                    continue
                below.append(following.strip())
            value = "\n".join(below)
        value = clean(value)
        if value:
            values.append(value)
    return values


def list_items(text: str) -> list[str]:
    """The items of the numbered or bulleted lists in a reply, continuation lines joined."""
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match:
            items.append(match.group("item").strip())
            open_item = True
        elif not line.strip():
            open_item = False
        elif open_item and line[:1].isspace():
            items[-1] += " " + line.strip()
        else:
            open_item = False
    return [c for c in (clean(item) for item in items) if c]


def chatter(text: str) -> bool:
    """Whether a text opens the way a model's talk does ("Sure", "I'm not sure", "Sorry") rather
    than the way an instruction does; used where a reply's bare text could be the answer."""
    return bool(_CHATTER.match(clean(text)))


def clean(value: str) -> str:
    """A value without surrounding whitespace, quotes or markdown emphasis."""
    value = value.strip()
    for _ in range(3):
        before = value
        value = value.strip().strip("*_`").strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if len(value) >= 2 and value[0] == "“" and value[-1] == "”":
            value = value[1:-1]
        if value == before:
            break
    return value.strip()


def number(value: Any) -> float | None:
    """A number from a JSON value or a text such as "7", "7/10" or "8 out of 10", or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _NUMBER.search(value)
        if match:
            return float(match.group())
    return None


def words(text: str) -> list[str]:
    """Lowercase words of a text (letters, digits and apostrophes)."""
    return re.findall(r"[a-z0-9']+", text.lower())
