"""`lalm-bench list`: what can be run and measured (suites, variants, sizes, backends, metrics)."""
from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the suites, variants, sizes, scan backends, phases, meters, metrics and statuses"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=("suites", "variants", "sizes", "metrics"),
                        help="list only this (default: everything)")


def _suites(out) -> None:
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


def _variants(out) -> None:
    from models import ALIASES, VARIANTS

    aliases = {canonical: alias for alias, canonical in ALIASES.items()}
    out.print("variants (ENCODER+LM): " + ", ".join(
        f"{v} (alias {aliases[v]})" if v in aliases else v for v in VARIANTS), highlight=False, markup=False)


def _sizes(out) -> None:
    from models import SIZES, SCAN_BACKENDS

    for name, preset in SIZES.items():
        out.print(f"size {name}: {preset.description}", highlight=False, markup=False)
    out.print("scan backends: " + ", ".join(SCAN_BACKENDS), highlight=False, markup=False)


def _metrics(out) -> None:
    from harness.schema import METRIC_UNITS, STATUSES
    from harness.suite import MEASURED_PHASES, METERS

    out.print("phases: " + ", ".join(MEASURED_PHASES), highlight=False, markup=False)
    out.print("meters: " + ", ".join(METERS), highlight=False, markup=False)
    out.print("metrics: " + ", ".join(f"{m} [{u}]" for m, u in METRIC_UNITS.items()), highlight=False, markup=False)
    out.print("statuses: " + ", ".join(STATUSES), highlight=False, markup=False)


def run(args: argparse.Namespace) -> int:
    from harness.commands.show import console

    out = console()
    sections = {"suites": _suites, "variants": _variants, "sizes": _sizes, "metrics": _metrics}
    for name, show in sections.items():
        if args.what in (None, name):
            show(out)
    return 0
