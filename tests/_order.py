"""Start the longest tests first, one per pytest-xdist worker, so the workers end together.

pytest-xdist hands each worker a run of consecutive tests, then more runs as they finish. In
collection order the longest tests (the 100,000-job backlog, the cluster failover) came near
the end and landed on one worker, which ran them one after the other while the others idled:
measured, a 171 s run whose tests added up to 435 s of work on four workers. Here the tests
named below are placed one at the start of each worker's first run, and the rest spread
over the first half of the order, longest first.
"""

from __future__ import annotations

import pytest

__all__ = ["LONGEST", "spread_longest_first"]

LONGEST = (
    "tests/test_reliability.py::test_backlog_of_100000_jobs",
    "tests/test_reliability.py::test_cluster_node_killed",
    "tests/test_reliability.py::test_server_restart",
    "tests/test_testing_plugin.py::test_example_project_passes",
    "tests/test_schedules.py::test_pause_resume_reschedule_cancel",
    "tests/test_examples.py::test_example_under_gunicorn",
    "tests/test_dashboard_browser.py::",
    "tests/test_delivery.py::test_killed_workers_job",
    "tests/test_ops.py::test_operating_a_worker",
    "tests/test_schedule_restarts.py::",
    "tests/test_schedules.py::test_repeat_stops",
    "tests/test_reliability.py::",
    "tests/test_cli.py::test_dev_runs",
)
"""Node id prefixes of the longest tests, longest first (from ``--durations`` of full runs)."""


def _rank(item: pytest.Item) -> int | None:
    for rank, prefix in enumerate(LONGEST):
        if item.nodeid.startswith(prefix):
            return rank
    return None


def spread_longest_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The tests in an order that starts the longest early, one per worker's first run."""
    ranked = [(rank, i, item) for i, item in enumerate(items) if (rank := _rank(item)) is not None]
    if workers < 2 or not ranked:
        return items
    longest = [item for _, _, item in sorted(ranked, key=lambda r: (r[0], r[1]))]
    rest = [item for item in items if _rank(item) is None]
    # xdist's first run per worker: max(2, tests per worker // 4) consecutive tests.
    step = max(2, len(items) // workers // 4)
    ordered = list(rest)
    for j, item in enumerate(longest):
        ordered.insert(min(j * step, len(ordered)), item)
    return ordered
