"""The parser of a subcommand whose flags are one config's fields.

Most commands are ``flags -> Config -> library function``: ``config_command`` adds such a
subcommand (its examples printed as written) and returns its parser, for positional arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from codit.config import add_arguments


def config_command(
    subparsers: Any,
    name: str,
    config: type,
    run: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, with one flag per field of ``config``, that calls ``run``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser, config)
    parser.set_defaults(run=run)
    return parser
