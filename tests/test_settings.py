"""Declarative field rules: one wording for every range and choice message."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from codit.errors import ConfigError
from codit.settings import check, problems, range_text, setting


@dataclass(frozen=True)
class Toy:
    alpha: float = setting(0.1, "a share", ge=0.0, le=1.0)
    top_p: float = setting(1.0, "a mass", gt=0.0, le=1.0)
    steps: int = setting(1, "a count", ge=1)
    mode: str = setting("a", "a choice", choices=("a", "b"))
    limit: int | None = setting(None, "optional count", ge=1, optional=True)
    flag: bool = setting(False, "booleans are never ranges", ge=1)

    def __post_init__(self) -> None:
        check(self, ["--steps and --limit disagree"] if self.limit == 7 else [])


def test_valid_values_pass_and_defaults_are_kept():
    assert problems(Toy()) == []
    assert Toy(alpha=0.0, top_p=1.0, steps=5, mode="b", limit=3).steps == 5


def test_every_problem_is_reported_at_once_in_one_wording():
    with pytest.raises(ConfigError) as err:
        Toy(alpha=1.5, top_p=0.0, steps=0, mode="c", limit=0)
    text = str(err.value)
    for sentence in (
        "--alpha must be in [0, 1], got 1.5",
        "--top-p must be in (0, 1], got 0",
        "--steps must be >= 1, got 0",
        "--mode must be one of a, b, not 'c'",
        "--limit must be >= 1, got 0",
    ):
        assert sentence in text


def test_cross_field_rules_are_added_to_the_same_error():
    with pytest.raises(ConfigError, match="disagree"):
        Toy(limit=7)


@pytest.mark.parametrize(
    ("metadata", "text"),
    [
        ({"ge": 0}, ">= 0"),
        ({"gt": 0.5}, "> 0.5"),
        ({"lt": 2}, "< 2"),
        ({"ge": 0, "lt": 1}, "in [0, 1)"),
        ({}, ""),
    ],
)
def test_range_text(metadata, text):
    assert range_text(metadata) == text


@dataclass(frozen=True)
class Repeated:
    names: tuple[str, ...] = setting(("a",), "a repeated flag", choices=("a", "b"))
    shares: tuple[float, ...] = setting((0.5,), "repeated numbers", gt=0.0, le=1.0)

    def __post_init__(self) -> None:
        check(self)


def test_a_tuple_field_takes_each_value_from_the_choices():
    assert Repeated(names=("b", "a")).names == ("b", "a")
    with pytest.raises(ConfigError) as err:
        Repeated(names=("a", "c", "d"))
    assert str(err.value) == "--names must be one of a, b, not 'c'"
    assert Repeated(shares=(1.0, 0.25)).shares == (1.0, 0.25)
    with pytest.raises(ConfigError) as err:
        Repeated(shares=(0.5, 0.0, 2.0))
    assert str(err.value) == "--shares must be in (0, 1], got 0"


def test_the_help_shows_the_declared_range_beside_the_default():
    import argparse

    from codit.config import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, Toy)
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["alpha"] == "a share (in [0, 1]; default: 0.1)"
    assert helps["limit"] == "optional count (>= 1)"
    assert helps["mode"] == "a choice (default: a)"
    assert parser.parse_args(["--mode", "b"]).mode == "b"
