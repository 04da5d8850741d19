"""`lalm-bench env`: the environment a run records (git sha, versions, CPU, GPUs, driver, host);
`--check`: every installed package that differs from the committed lock."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "env"
HELP = "print the environment every run records: code version, libraries, CPU, GPUs and driver"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true",
                        help="compare the installed packages with requirements/lock.txt and list every difference")
    parser.add_argument("--strict", action="store_true", help="with --check: exit 1 when anything differs")
    parser.add_argument("--lock", type=Path, metavar="FILE",
                        help="with --check: the lock to compare with (default: the checkout's requirements/lock.txt)")


def _check(args: argparse.Namespace) -> int:
    from rich.table import Table

    from harness import lock
    from harness.commands.show import console

    lock_file = args.lock or lock.LOCK
    differences = lock.check(lock_file)
    if args.json:
        print(json.dumps([{**vars(d), "kind": d.kind} for d in differences], indent=2))
    elif not differences:
        print(f"every installed package matches {lock_file}")
    else:
        table = Table(title=f"installed packages that differ from {lock_file}", title_justify="left")
        for column in ("package", "installed", "pinned", "difference"):
            table.add_column(column)
        for d in differences:
            table.add_row(d.package, d.installed or "-", d.pinned or "-", f"{d.kind} ({d.source})" if d.pinned else d.kind)
        console().print(table)
        print(f"warning: {len(differences)} package(s) differ from the lock; figures made here may not match "
              "figures made from it (`make setup` installs it)")
    return 1 if differences and args.strict else 0


def run(args: argparse.Namespace) -> int:
    if args.strict and not args.check or args.lock and not args.check:
        from harness.errors import UserError

        raise UserError("--strict and --lock go with --check")
    if args.check:
        return _check(args)
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
            table.add_row("packages", "")
            for name, version in value.items():
                table.add_row(f"  {name}", version or "(not installed)")
        elif key == "kernels":
            table.add_row("kernels", "")
            for name, state in value.items():
                table.add_row(f"  {name}", str(state))
        elif key == "gpus":
            for gpu in value or [{"index": "-", "name": "none found", "memory_bytes": "0"}]:
                table.add_row(f"gpu {gpu['index']}", f"{gpu['name']} ({int(gpu['memory_bytes']) / 2**30:.0f} GiB)")
        else:
            table.add_row(key, str(value))
    console().print(table)
    return 0
