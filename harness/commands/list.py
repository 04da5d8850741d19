"""`lalm-bench list [KIND]`: what can be run and measured, each list read from where it is defined
(suites/, models' names and presets, the suite schema, the results schema)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

NAME = "list"
HELP = "list the suites, variants, sizes, scan backends, phases, meters, metrics and statuses"


def _print(out: Console, text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def _suites(out: Console) -> None:
    from rich.table import Table

    from harness.errors import UserError
    from harness.suite import expand, load_suite, suite_names

    table = Table(title="suites (lalm-bench run NAME)")
    for column in ("name", "points", "device", "variants", "description"):
        table.add_column(column)
    for name in suite_names():
        try:
            suite, _ = load_suite(name)
        except UserError as err:
            table.add_row(name, "", "", "", f"[red]invalid: {err}[/]")
            continue
        # Points per device: "auto" expands as it would on a CPU (the count is the same on a GPU).
        points = len(expand(suite.with_device("cuda" if suite.run.device == "cuda" else "cpu")))
        table.add_row(name, str(points), suite.run.device, ", ".join(dict.fromkeys(suite.grid.variant)),
                      suite.description)
    out.print(table)


def _variants(out: Console) -> None:
    from models import ALIASES, VARIANTS

    aliases = {canonical: alias for alias, canonical in ALIASES.items()}
    _print(out, "variants (ENCODER+LM): " + ", ".join(
        f"{v} (alias {aliases[v]})" if v in aliases else v for v in VARIANTS))


def _sizes(out: Console) -> None:
    from models import SIZES

    for name, preset in SIZES.items():
        _print(out, f"size {name}: {preset.description}")


def _backends(out: Console) -> None:
    from models import SCAN_BACKENDS

    _print(out, "scan backends (scan_backend): " + ", ".join(SCAN_BACKENDS))


def _phases(out: Console) -> None:
    from harness.suite import MEASURED_PHASES

    _print(out, "phases (measure.phases): " + ", ".join(MEASURED_PHASES))


def _meters(out: Console) -> None:
    from harness.suite import METERS

    _print(out, "meters (measure.meters): " + ", ".join(METERS))


def _metrics(out: Console) -> None:
    from harness.schema import METRIC_UNITS

    _print(out, "metrics: " + ", ".join(f"{m} [{u}]" for m, u in METRIC_UNITS.items()))


def _statuses(out: Console) -> None:
    from harness.schema import STATUSES

    _print(out, "statuses: " + ", ".join(STATUSES))


SECTIONS: dict[str, Callable[[Console], None]] = {"suites": _suites, "variants": _variants, "sizes": _sizes, "backends": _backends,
                                 "phases": _phases, "meters": _meters, "metrics": _metrics, "statuses": _statuses}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=SECTIONS, metavar="KIND",
                        help=f"list only this: {', '.join(SECTIONS)} (default: everything)")


def run(args: argparse.Namespace) -> int:
    from harness.commands.show import console

    out = console()
    for name, show in SECTIONS.items():
        if args.what in (None, name):
            show(out)
    return 0
