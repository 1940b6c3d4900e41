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

_REPORTS: list[tuple[str, dict[str, object]]] = []


@pytest.fixture
def counts(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Callable[..., None]:
    """``counts(enqueued=1000, finished=1000, run_twice=3)`` reports this test's numbers."""

    def report(**numbers: object) -> None:
        for name, value in numbers.items():
            record_property(name, value)
        _REPORTS.append((request.node.nodeid, numbers))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _REPORTS:
        return
    terminalreporter.section("naq job counts")
    for nodeid, numbers in _REPORTS:
        shown = ", ".join(f"{name}={value}" for name, value in numbers.items())
        terminalreporter.write_line(f"{nodeid}: {shown}")
