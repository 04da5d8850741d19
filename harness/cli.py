"""`lalm-bench` entry point: discovers the sub-commands and turns bad input into exit code 2.

Only the command being run gets its arguments added: `lalm-bench --help` needs each command's
NAME and HELP alone, so it (and every command module at import) stays free of torch,
transformers and pandas, which take seconds to import (docs/PERF.md has the figure).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

import harness.commands
from models.errors import InputError

EXIT_BAD_INPUT = 2


def command_modules() -> dict[str, ModuleType]:
    """Every sub-command's module by command name, in alphabetical order of module name."""
    names = sorted(m.name for m in pkgutil.iter_modules(harness.commands.__path__))
    modules = [importlib.import_module(f"harness.commands.{n}") for n in names]
    return {module.NAME: module for module in modules}


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a missing argument, an invalid choice) as one line too, like every
    other bad input; the usage they would print first is what --help shows."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command; only `command`'s own arguments are added (none: just
    the list of commands, which is all `--help` shows)."""
    parser = _Parser(
        prog="lalm-bench",
        description="Benchmark and profile transformer vs state-space audio language models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in command_modules().items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        if name == command:
            module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in argv: its first word that is not an option (the top-level
    parser's only options, -h/--help, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as err:
        print(f"lalm-bench {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lalm-bench: interrupted", file=sys.stderr)
        return 130
