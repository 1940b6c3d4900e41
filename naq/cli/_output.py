"""What the CLI prints: tables that never cut an id, JSON for scripts, times in ISO 8601.

Rich sizes a table to the terminal, or to 80 columns when stdout is not a terminal, and
squeezes columns to fit, down to one letter or ``f62743c6dee…``: an id that cannot be
copied. A ``Listing`` is printed instead: piped, as a table as wide as its content (nothing
wrapped, nothing cut); in a terminal, as a table whose cells wrap when it fits, else as one
block of ``field  value`` lines per row, which always fits. Ids are printed whole in all three.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from .._time import as_utc

__all__ = ["Listing", "console", "iso", "print_json"]

console = Console(highlight=False)


def iso(value: datetime | None, *, seconds: bool = False) -> str | None:
    """A time as ISO 8601 in UTC (``2026-11-30T08:23:41.602422+00:00``), or None.

    ``seconds=True`` drops the fraction, for tables: still ISO 8601, still UTC.
    """
    if value is None:
        return None
    return as_utc(value).isoformat(timespec="seconds" if seconds else "auto")


def print_json(value: Any) -> None:
    """JSON for scripts: plain stdout, never wrapped or coloured; times as ISO 8601."""

    def default(obj: Any) -> Any:
        return iso(obj) if isinstance(obj, datetime) else str(obj)

    sys.stdout.write(json.dumps(value, indent=2, default=default) + "\n")
    sys.stdout.flush()


class Listing:
    """Rows to print under headers; see the module for how they are laid out."""

    def __init__(self, *, title: str | None = None, show_header: bool = True) -> None:
        self.title = title
        self.show_header = show_header
        self._columns: list[tuple[str, bool, bool]] = []  # header, is an id, right-aligned
        self._rows: list[tuple[str, ...]] = []

    def id_column(self, header: str) -> None:
        """A column of ids or names: never wrapped, never cut."""
        self._columns.append((header, True, False))

    def text_column(self, header: str, *, right: bool = False) -> None:
        """A column whose cells may wrap when the table must narrow."""
        self._columns.append((header, False, right))

    def add_row(self, *cells: str) -> None:
        self._rows.append(cells)

    def _table(self) -> Table:
        table = Table(title=self.title, show_header=self.show_header)
        for header, is_id, right in self._columns:
            justify = "right" if right else "left"
            table.add_column(header, no_wrap=is_id, overflow="fold", justify=justify)
        for row in self._rows:
            table.add_row(*row)
        return table

    def print(self) -> None:
        """Print on stdout: a table as wide as it needs, or as the terminal, or blocks."""
        table = self._table()
        measured = console.measure(table, options=console.options.update(width=1_000_000))
        if not console.is_terminal:
            Console(highlight=False, width=measured.maximum).print(table)
        elif measured.minimum <= console.width:
            Console(highlight=False, width=min(console.width, measured.maximum)).print(table)
        else:
            self._print_blocks()

    def _print_blocks(self) -> None:
        """One ``field  value`` line per cell, a blank line between rows (narrow terminals)."""
        width = max(len(header) for header, _, _ in self._columns)
        out = Console(highlight=False, width=console.width)
        if self.title:
            out.print(self.title, markup=False)
        for n, row in enumerate(self._rows):
            if n or self.title:
                out.print()
            for (header, is_id, _), cell in zip(self._columns, row, strict=True):
                if is_id:  # whole, even wider than the terminal
                    sys.stdout.write(f"{header.ljust(width)}  {cell}\n")
                    sys.stdout.flush()
                else:
                    out.print(f"{header.ljust(width)}  {cell}", markup=False, overflow="fold")
