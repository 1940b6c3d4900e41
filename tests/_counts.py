"""Job counts reported by the fault and bad-input tests, shown in the terminal summary.

pytest captures ``print`` unless ``-s`` is given, so tests hand their counts (jobs enqueued,
finished, run twice, dead-lettered...) to the ``counts`` fixture instead: they are printed
in a "naq job counts" section at the end of every run, CI included, and stored as JUnit
properties.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

__all__ = ["counts", "pytest_terminal_summary"]

_PREFIX = "naq_count_"


@pytest.fixture
def counts(record_property: Callable[[str, object], None]) -> Callable[..., None]:
    """``counts(enqueued=1000, finished=1000, run_twice=3)`` reports this test's numbers."""

    def report(**numbers: object) -> None:
        for name, value in numbers.items():
            record_property(_PREFIX + name, value)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every test's counts; read from the reports, so it works under pytest-xdist too."""
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            numbers = [
                (name[len(_PREFIX) :], value)
                for name, value in getattr(report, "user_properties", ())
                if name.startswith(_PREFIX)
            ]
            if numbers:
                rows.append((report.nodeid, numbers))
    if not rows:
        return
    terminalreporter.section("naq job counts")
    for nodeid, numbers in sorted(rows):
        shown = ", ".join(f"{name}={value}" for name, value in numbers)
        terminalreporter.write_line(f"{nodeid}: {shown}")
