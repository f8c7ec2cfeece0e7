"""Prompt templates: text files under ``codit/prompts`` with ``{name}`` placeholders.

A template is filled in one pass that replaces only the placeholders it is given, so braces
elsewhere (a JSON example in the prompt, braces inside an instruction being rewritten) are left
exactly as they are. Not a template language: no loops, no conditions, no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from codit.errors import DataError


def load_template(name: str) -> str:
    """The text of the built-in template ``codit/prompts/<name>.txt``."""
    path = resources.files("codit").joinpath(f"prompts/{name}.txt")
    if not path.is_file():
        raise DataError(f"the prompt template {name}.txt is missing from codit/prompts")
    return path.read_text("utf-8")


def user_template(
    path: str | Path | None, builtin: str, placeholders: Sequence[str], kind: str
) -> str:
    """A template the user may replace: the file ``path``, else the built-in ``builtin``.

    Args:
        kind: what the template is for, as the messages name it ("judge", "grading").

    Raises:
        DataError: the file is missing or lacks one of ``placeholders``.
    """
    if path is None:
        text = load_template(builtin)
    elif not Path(path).is_file():
        raise DataError(f"{kind} template {path} does not exist")
    else:
        text = Path(path).read_text(encoding="utf-8")
    missing = [p for p in placeholders if "{" + p + "}" not in text]
    if missing:
        raise DataError(
            f"{kind} template {path or builtin + '.txt'} lacks the placeholders {missing}"
        )
    return text


def render(template: str, **values: object) -> str:
    """Fill ``{name}`` for every given name; a given name the template lacks is an error.

    Raises:
        DataError: a value is given for a placeholder the template does not have.
    """
    missing = [name for name in values if "{" + name + "}" not in template]
    if missing:
        raise DataError(f"the prompt template has no placeholder {{{missing[0]}}}")
    if not values:
        return template
    pattern = re.compile(r"\{(" + "|".join(re.escape(name) for name in values) + r")\}")
    return pattern.sub(lambda m: str(values[m.group(1)]), template)
