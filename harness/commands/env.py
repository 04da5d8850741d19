"""`lalm-bench env`: the environment a run records (git sha, versions, CPU, GPUs, driver, host)."""
from __future__ import annotations

import argparse
import json

NAME = "env"
HELP = "print the environment every run records: code version, libraries, CPU, GPUs and driver"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from harness.commands.show import console
    from harness.env import capture

    found = capture()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="environment", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in found.items():
        if key == "packages":
            for name, version in value.items():
                table.add_row(f"  {name}", version or "(not installed)")
        elif key == "gpus":
            for gpu in value or [{"index": "-", "name": "none found", "memory_bytes": "0"}]:
                table.add_row(f"gpu {gpu['index']}", f"{gpu['name']} ({int(gpu['memory_bytes']) / 2**30:.0f} GiB)")
        else:
            table.add_row(key, str(value))
    console().print(table)
    return 0
