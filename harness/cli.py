"""`lalm-bench` entry point: discovers the sub-commands and turns bad input into exit code 2."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

import harness.commands
from models.errors import InputError

EXIT_BAD_INPUT = 2


def _command_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(harness.commands.__path__))
    return [importlib.import_module(f"harness.commands.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lalm-bench",
        description="Benchmark and profile transformer vs state-space audio language models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as err:
        print(f"lalm-bench {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lalm-bench: interrupted", file=sys.stderr)
        return 130
