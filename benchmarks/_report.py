"""The results: one row per figure, printed as a table or written as JSON."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from naq.server import EmbeddedServer

__all__ = ["Row", "compare_workers", "format_table", "interleave", "ratio_table", "write_json"]

V = TypeVar("V")


@attrs.frozen
class Row:
    """One figure, and the floor it is compared to in the same unit (none for the floors)."""

    name: str
    value: float
    unit: str
    floor_name: str | None = None
    floor_value: float | None = None
    runs: tuple[float, ...] = ()
    """The figure of each run, when ``value`` is their median."""

    @property
    def ratio(self) -> float | None:
        """``value / floor_value``: below 1 is slower than the floor for a rate."""
        if self.floor_value is None or self.floor_value == 0:
            return None
        return self.value / self.floor_value

    def as_dict(self) -> dict[str, Any]:
        """The row as plain JSON values, ratio included."""
        return {**attrs.asdict(self), "ratio": self.ratio}


def _figure(value: float, unit: str) -> str:
    number = f"{value:,.0f}" if unit == "ops/s" else f"{value:.2f}"
    return f"{number} {unit}"


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: name, figure, floor (name and figure) and ratio."""
    header = ("name", "figure", "floor", "ratio")
    cells = [header]
    for row in rows:
        floor = (
            f"{row.floor_name}: {_figure(row.floor_value, row.unit)}"
            if row.floor_name is not None and row.floor_value is not None
            else "-"
        )
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        cells.append((row.name, _figure(row.value, row.unit), floor, ratio))
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    aligns = ("<", ">", "<", ">")
    lines = [
        "  ".join(
            f"{cell:{align}{width}}"
            for cell, align, width in zip(line, aligns, widths, strict=True)
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: str | Path, rows: Sequence[Row], context: Mapping[str, Any]) -> None:
    """Write ``{"context": ..., "rows": [...]}`` to ``path``."""
    document = {"context": dict(context), "rows": [row.as_dict() for row in rows]}
    Path(path).write_text(json.dumps(document, indent=2) + "\n")


def interleave(
    rounds: int, names: Iterable[str], measure: Callable[[str], float], unit: str
) -> dict[str, list[float]]:
    """Each variant measured once a round, the rounds one after another, so the machine's
    drift falls on every variant alike; each figure is reported on stderr as it comes."""
    names = list(names)
    figures: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            figure = measure(name)
            figures[name].append(figure)
            print(f"  {name}: {figure:,.0f} {unit}", file=sys.stderr, flush=True)
    return figures


def ratio_table(
    figures: Mapping[str, Sequence[float]], base: str, what: str, unit: str, digits: int = 2
) -> str:
    """A markdown table: each variant's median and its ratio to ``base`` in the same round
    (median, and range over the rounds)."""
    lines = [f"| {what} | {unit} | ratio (range) |", "| --- | ---: | ---: |"]
    for name, measured in figures.items():
        ratios = [b / a for a, b in zip(figures[base], measured, strict=True)]
        lines.append(
            f"| {name} | {statistics.median(measured):,.0f} | "
            f"{statistics.median(ratios):.{digits}f} "
            f"({min(ratios):.{digits}f}-{max(ratios):.{digits}f}) |"
        )
    return "\n".join(lines)


def compare_workers(
    description: str,
    variants: Mapping[str, V],
    drain: Callable[[str, int, V], Awaitable[float]],
    concurrency: int,
    *,
    quick: tuple[int, int] = (1_000, 1),
    full: tuple[int, int] = (5_000, 3),
    digits: int = 2,
) -> None:
    """The ``main`` of a worker-cost benchmark: ``drain(url, jobs, variant)`` in jobs/s for
    each variant, rounds interleaved on one embedded server, ratios to the first variant.

    ``quick`` and ``full`` are (jobs, rounds) with and without ``--quick``; ``--jobs`` and
    ``--repeats`` replace either.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help=f"{quick[0]:,} jobs, {quick[1]} round(s)"
    )
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    jobs, rounds = quick if args.quick else full
    jobs, rounds = args.jobs or jobs, args.repeats or rounds
    base = next(iter(variants))
    with EmbeddedServer() as server:
        rates = interleave(
            rounds,
            variants,
            lambda name: anyio.run(drain, server.url, jobs, variants[name]),
            "jobs/s",
        )
    print(f"{os.cpu_count()} CPU(s), {jobs:,} noop async def jobs, c={concurrency}, asyncio,")
    print(f"median of {rounds} round(s); ratio to {base!r} in the same round")
    print(ratio_table(rates, base, "worker", "jobs/s", digits))
