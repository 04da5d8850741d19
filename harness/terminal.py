"""Tables for the terminal (`show`, `compare`): identifying columns keep their width, measurements wrap.

rich shrinks every column of a table wider than the console, the narrow ones included, so at
100 columns a point's variant, batch or status would be cut to nothing. Identifying columns get
a fixed width (their longest cell) and never wrap; the measurement columns wrap instead.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Width for output that is not a terminal (a file, a pager) when COLUMNS does not say otherwise:
# wide enough that a point stays on one line.
PIPED_WIDTH = 200


def console() -> Console:
    """stdout: the terminal's width (or COLUMNS); PIPED_WIDTH when piped and COLUMNS is not set."""
    out = Console()
    return out if out.is_terminal or "COLUMNS" in os.environ else Console(width=PIPED_WIDTH)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], identity: Sequence[str],
          right: Sequence[str] = (), styles: Sequence[Sequence[str]] | None = None) -> Table:
    """A rich Table of plain-text cells; `identity` columns keep their full width, the others wrap.

    `right`: columns aligned right. `styles`: a rich style per cell ("" for none), same shape as rows.
    """
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(columns):
        justify = "right" if name in right else "left"
        if name in identity:
            width = max([cell_len(name), *(cell_len(str(row[i])) for row in rows)])
            out.add_column(name, justify=justify, width=width, no_wrap=True)
        else:
            out.add_column(name, justify=justify, overflow="fold")
    for r, row in enumerate(rows):
        out.add_row(*(Text(str(cell), style=styles[r][i] if styles else "") for i, cell in enumerate(row)))
    return out
