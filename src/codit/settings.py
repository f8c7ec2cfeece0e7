"""Declarative settings: one place for a config field's default, help, range and choices.

A config field written with ``setting(...)`` carries its rule in the field metadata::

    beta: float = setting(1.0, "contrast strength", ge=0.0)
    mode: str = setting("codit", "what to decode", choices=MODES)

``codit.config.add_arguments`` reads ``help`` and ``choices`` from there (and shows the range
in the help text), and ``problems(config)`` checks every field of a config against its rule,
with one wording for every message (``--beta must be >= 0, got -1``). A config's
``__post_init__`` calls ``check(self)`` and adds only the rules that tie several fields
together. This module knows nothing about any particular config.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from codit.errors import ConfigError

_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    optional: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its help text and its allowed values.

    Args:
        default: the default value.
        help: one line for ``--help``.
        ge, gt, le, lt: bounds (>=, >, <=, <) for numbers (each one, for a tuple field).
        choices: the allowed values (each value, for a tuple field).
        optional: None is allowed too (and skips the checks).
        default_factory: instead of ``default``, for mutable defaults.
    """
    metadata: dict[str, Any] = {"help": help}
    for key, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)):
        if value is not None:
            metadata[key] = value
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if optional:
        metadata["optional"] = True
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(metadata: Any) -> str:
    """The allowed range of a field as text: ``in [0, 1]``, ``>= 1``; empty when unbounded."""
    low = next(((k, metadata[k]) for k in ("ge", "gt") if k in metadata), None)
    high = next(((k, metadata[k]) for k in ("le", "lt") if k in metadata), None)
    if low and high:
        left = "[" if low[0] == "ge" else "("
        right = "]" if high[0] == "le" else ")"
        return f"in {left}{_number(low[1])}, {_number(high[1])}{right}"
    for key, sign in _BOUNDS:
        if key in metadata:
            return f"{sign} {_number(metadata[key])}"
    return ""


def _in_bounds(value: float, metadata: Any) -> bool:
    return not (
        ("ge" in metadata and value < metadata["ge"])
        or ("gt" in metadata and value <= metadata["gt"])
        or ("le" in metadata and value > metadata["le"])
        or ("lt" in metadata and value >= metadata["lt"])
    )


def field_problem(name: str, value: Any, metadata: Any) -> str | None:
    """The sentence for one field whose value breaks its rule, or None.

    A tuple field (a repeated flag) is checked value by value; the first bad one is named.
    """
    if value is None and metadata.get("optional"):
        return None
    values = value if isinstance(value, tuple) else (value,)
    choices = metadata.get("choices")
    for v in values if choices is not None else ():
        if v not in choices:
            allowed = ", ".join(str(c) for c in choices)
            return f"{flag_name(name)} must be one of {allowed}, not {v!r}"
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and not _in_bounds(v, metadata):
            return f"{flag_name(name)} must be {range_text(metadata)}, got {_number(v)}"
    return None


_RULES = ("choices", *(k for k, _ in _BOUNDS))


@functools.cache
def _ruled_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, metadata) of the fields of ``cls`` that declare a rule; read once per class."""
    return tuple(
        (f.name, f.metadata)
        for f in dataclasses.fields(cls)
        if any(k in f.metadata for k in _RULES)
    )


def problems(config: Any) -> list[str]:
    """Every field of ``config`` (a dataclass instance) that breaks its declared rule."""
    out = []
    for name, metadata in _ruled_fields(config.__class__):
        problem = field_problem(name, getattr(config, name), metadata)
        if problem:
            out.append(problem)
    return out


def check(config: Any, extra: Sequence[str] = ()) -> None:
    """Raise one ``ConfigError`` listing every declared-rule problem plus ``extra`` ones."""
    found = [*problems(config), *extra]
    if found:
        raise ConfigError(found)
