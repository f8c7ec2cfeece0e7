"""Entry point of the ``codit`` command.

Each subcommand lives in its own module under ``codit.cli`` with two functions:
``register(subparsers)`` adds its parser (no heavy imports), and ``run(args) -> int`` does the
work, importing torch and friends only then. Deliberate errors (``CoditError``) print one
sentence and exit with their code; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

from codit import __version__
from codit.errors import CoditError

# name -> module; a plain dict is all the indirection the CLI needs.
COMMANDS: dict[str, str] = {
    "generate": "codit.cli.generate",
    "check": "codit.cli.check",
    "tiny": "codit.cli.tiny",
    "eval": "codit.cli.eval",
    "train": "codit.cli.train",
    "paraphrase": "codit.cli.paraphrase",
    "codeclm": "codit.cli.codeclm",
    "ecd": "codit.cli.ecd",
    "experiment": "codit.cli.experiment",
    "annotate": "codit.cli.annotate",
    "filter": "codit.cli.filter",
    "select": "codit.cli.select",
    "serve": "codit.cli.serve",
    "export": "codit.cli.export",
    "compare": "codit.cli.compare",
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-sentence error instead of the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="codit",
        description="Instruction-tuning data and training with contrastive methods.",
    )
    parser.add_argument("--version", action="version", version=f"codit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # a command that is not part of this build
            raise
        module.register(sub)
    return parser


def _user_facing(err: BaseException) -> str | None:
    """The sentence for an input that is not UTF-8 or a disk that is full; None: a bug."""
    from codit.io.atomic import no_space

    if isinstance(err, UnicodeDecodeError):
        return f"an input is not valid UTF-8 ({err}); save it as UTF-8"
    if no_space(err):  # an OSError, or a library's own error (safetensors) that quotes one
        filename = getattr(err, "filename", None)
        where = f" {filename}" if filename else ""
        reason = getattr(err, "strerror", None) or str(err)
        return f"cannot write{where}: {reason}; free some space and rerun the same command"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # --debug is accepted anywhere on the line, not only before the subcommand.
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = parser.parse_args(argv)
    args.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.run(args) or 0)
    except CoditError as err:
        if debug:
            raise
        print(f"codit: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # a reader or writer we did not route; anything else is a bug
        if debug or not _user_facing(err):
            raise
        print(f"codit: error: {_user_facing(err)}", file=sys.stderr)
        return 3 if isinstance(err, UnicodeDecodeError) else 8
    except KeyboardInterrupt:
        print("codit: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
