"""Frozen-dataclass configs as the single source of CLI flags, YAML files and run manifests.

A config is a ``@dataclass(frozen=True)`` whose fields carry their help text, range and
choices in ``codit.settings.setting(...)``. ``add_arguments`` turns the fields into argparse flags
(``max_new_tokens`` -> ``--max-new-tokens``), ``from_namespace`` builds the config back from
parsed arguments (optionally layered over a YAML file or a shipped preset, ``PRESETS``), and ``to_dict`` is what a manifest
records. Validation lives in each config's ``__post_init__`` (``settings.check`` for the
declared rules, by hand only for rules across fields) and raises one ``ConfigError`` listing
every problem.

This module knows nothing about models or decoding; it only moves values around.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from codit.errors import ConfigError, DataError
from codit.settings import flag_name as flag
from codit.settings import range_text

C = TypeVar("C")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """Return (the non-None type, whether None is allowed) of an annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return tp, False


def _init_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The fields of the dataclass ``cls`` that its constructor takes, with their non-None types."""
    hints = typing.get_type_hints(cls)
    return [(f, _base_type(hints[f.name])[0]) for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of the dataclass ``cls`` (defaults are resolved later)."""
    for f, tp in _init_fields(cls):
        if f.name in skip:
            continue
        if dataclasses.is_dataclass(tp):
            add_arguments(parser, tp, skip)  # type: ignore[arg-type]  # nested configs are flattened into one flag set
            continue
        help_text = f.metadata.get("help", "")
        notes = [range_text(f.metadata)]
        default = _default(f)
        if default is not None and default != () and default != {}:
            notes.append(f"default: {default}")
        if any(notes):
            help_text += f" ({'; '.join(n for n in notes if n)})"
        choices = f.metadata.get("choices")
        if tp is bool:
            parser.add_argument(
                flag(f.name),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif typing.get_origin(tp) is dict or tp is dict:
            parser.add_argument(
                flag(f.name),
                dest=f.name,
                default=None,
                nargs="+",
                metavar="KEY=VALUE",
                type=str,
                help=help_text + " (KEY=VALUE pairs or one JSON object)",
            )
        elif typing.get_origin(tp) is tuple:
            # the choices are checked by the config (a value may be split first)
            of = f" of {', '.join(choices)}" if choices else ""
            parser.add_argument(
                flag(f.name),
                dest=f.name,
                default=None,
                action="append",
                type=str,
                help=help_text + f" (repeat the flag for several values{of})",
            )
        else:
            conv = tp if tp in (int, float) else str
            parser.add_argument(
                flag(f.name),
                dest=f.name,
                default=None,
                type=_typed(conv, f.name),
                choices=choices,
                help=help_text,
            )


def _typed(conv: Any, name: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return conv(text)
        except ValueError:
            kind = "an integer" if conv is int else "a number"
            raise argparse.ArgumentTypeError(f"{flag(name)} takes {kind}, not {text!r}") from None

    parse.__name__ = getattr(conv, "__name__", "value")
    return parse


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def parse_key_values(items: list[str] | str | dict[str, Any] | None, name: str) -> dict[str, Any]:
    """Parse ``["a=1", "b=false"]`` or ``'{"a": 1}'`` into a dict with JSON-typed values."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    if isinstance(items, str):
        items = [items]
    joined = " ".join(items).strip()
    if joined.startswith("{"):
        try:
            value = json.loads(joined)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{flag(name)} is not valid JSON ({err.msg})") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{flag(name)} must be a JSON object")
        return value
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag(name)} takes KEY=VALUE pairs, not {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def from_namespace(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """Build ``cls`` from parsed flags, over the values of ``args.config`` (YAML) if given.

    Precedence: explicit flags > YAML file > dataclass defaults. Nested config fields are
    filled from the same flat flags (a YAML file may also nest them under the field's name).
    """
    values: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    names = _flat_names(cls)
    if config_path:
        path = config_file(config_path)
        values.update(load_yaml(path))
        check_yaml(path, values, _flat_types(cls))
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(cls, values)


def _flat_names(cls: type) -> set[str]:
    return set(_flat_types(cls))


def _flat_types(cls: type) -> dict[str, Any]:
    """Every field name (nested configs flattened) -> its non-None type."""
    types_: dict[str, Any] = {}
    for f, tp in _init_fields(cls):
        types_[f.name] = tp
        if dataclasses.is_dataclass(tp):
            types_.update(_flat_types(tp))  # type: ignore[arg-type]
    return types_


def _type_problem(tp: Any, value: Any) -> str | None:
    """Why a YAML value does not fit a field of type ``tp`` (None: it fits)."""
    if value is None:
        return None  # the default
    if dataclasses.is_dataclass(tp):
        ok, kind = isinstance(value, dict), "a mapping of its settings"
    elif tp is bool:
        ok, kind = isinstance(value, bool), "true or false"
    elif tp is int:
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        kind = "a number"
    elif tp is str:
        ok, kind = isinstance(value, str | int | float) and not isinstance(value, bool), "a text"
    elif typing.get_origin(tp) is tuple:
        ok, kind = isinstance(value, list | str), "a list"
    elif typing.get_origin(tp) is dict or tp is dict:
        ok, kind = isinstance(value, dict | str | list), "a mapping"
    else:
        return None
    return None if ok else f"must be {kind}, not {value!r}"


def check_yaml(path: Path, values: dict[str, Any], known: dict[str, Any]) -> None:
    """Name every unknown or mistyped key of a YAML config, with its line.

    Raises:
        ConfigError: one problem per bad key, e.g. "c.yaml, line 3: unknown key 'alhpa'
            (did you mean 'alpha'?)".
    """
    import difflib

    lines = yaml_lines(path)
    problems = []
    for key, value in values.items():
        where = f"{path}, line {lines.get(key, '?')}"
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {sorted(known)}"
            problems.append(f"{where}: unknown key {key!r}{hint}")
            continue
        problem = _type_problem(known[key], value)
        if problem:
            problems.append(f"{where}: {key} {problem}")
    if problems:
        raise ConfigError(problems)


def _build(cls: type[C], values: dict[str, Any]) -> C:
    kwargs: dict[str, Any] = {}
    for f, tp in _init_fields(cls):
        if dataclasses.is_dataclass(tp):
            nested = dict(values.get(f.name) or {}) if isinstance(values.get(f.name), dict) else {}
            nested.update({k: v for k, v in values.items() if k in _flat_names(tp)})  # type: ignore[arg-type]
            kwargs[f.name] = _build(tp, nested)  # type: ignore[arg-type]
            continue
        if f.name not in values:
            continue
        value = values[f.name]
        if typing.get_origin(tp) is dict or tp is dict:
            value = parse_key_values(value, f.name)
        elif typing.get_origin(tp) is tuple and isinstance(value, list | str):
            value = tuple([value] if isinstance(value, str) else value)
        kwargs[f.name] = value
    return cls(**kwargs)


# Shipped presets (``codit/presets/NAME.yaml``): name -> (the command they are for, what they are).
PRESETS = {
    "codit-paper": (
        "generate",
        "the CoDIT authors' decoding: alpha 0.01, beta 1, temperature 1, top-p 1, 4096 new "
        "tokens, Qwen3 thinking off",
    ),
    "codeclm-paper": (
        "codeclm",
        "the CodecLM paper's values: 500 kept pairs, theta 3, 4 iterations, 4 rubrics, pool "
        "200, temperature 0.7, judge at 0 with one line of two scores",
    ),
    "coin-authors": (
        "train coin",
        "the CoIN authors' setup: LoRA r16/alpha16/dropout 0.05 on q,k,v,o, lr 1e-4, 10% "
        "warmup, max length 256, pair negatives, micro-batch 2 accumulated to 64",
    ),
    "ecd-reconstruction": (
        "ecd",
        "the closest reconstruction of ECD from its abstract (not the paper's own settings): "
        "its families of evolution, 4 rounds, an LLM judge",
    ),
}


def preset_path(name: str) -> Path:
    """The shipped YAML file of the preset ``name``."""
    from importlib import resources

    return Path(str(resources.files("codit").joinpath(f"presets/{name}.yaml")))


def config_help(command: str) -> str:
    """The ``--config`` help of ``command``, naming the presets shipped for it."""
    names = [f"{n} ({about})" for n, (cmd, about) in PRESETS.items() if cmd == command]
    shipped = f"; or a shipped preset: {'; '.join(names)}" if names else ""
    text = f"YAML file with any of the settings below{shipped}. Flags win over it"
    return text.replace("%", "%%")  # argparse formats help strings with %


def config_file(path: Path | str) -> Path:
    """The file a ``--config`` value names: a YAML file, or else a shipped preset of that name.

    Raises:
        DataError: neither exists.
    """
    path = Path(path)
    if not path.is_file() and str(path) in PRESETS:
        path = preset_path(str(path))
    if not path.is_file():
        raise DataError(
            f"config file {path} does not exist (shipped presets: {', '.join(PRESETS)})"
        )
    return path


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML config file, or a shipped preset by name, into a flat dict (keys may use
    dashes or underscores). A file of that name wins over a preset."""
    import yaml

    path = config_file(path)
    try:
        data = yaml.safe_load(_yaml_text(path)) or {}
    except yaml.YAMLError as err:
        raise DataError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"config file {path} must hold a mapping of setting: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _yaml_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"config file {path} does not exist")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"config file {path}, line {line}: not valid UTF-8") from None


def yaml_lines(path: Path) -> dict[str, int]:
    """The line of each top-level key of a YAML mapping (keys with underscores)."""
    import yaml

    try:
        node = yaml.compose(_yaml_text(path))
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value).replace("-", "_"): k.start_mark.line + 1 for k, _ in node.value}


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready view of a config, for manifests."""

    def clean(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return to_dict(value)
        return value

    return {f.name: clean(getattr(config, f.name)) for f in dataclasses.fields(config)}
