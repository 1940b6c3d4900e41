"""naq.testing: the example project's tests, run as a user would run them, pass.

They run in a real subprocess (serially, and with pytest-xdist on two workers), each process
with its own nats-server from the plugin; the JUnit report says what ran and on which backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from naq._transport import is_naq_stream
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "testing_project"


def run_example_tests(
    report: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], ET.ElementTree]:
    """``python -m pytest -p naq.testing`` in the example project, with this checkout's naq."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NAQ_NATS_URL", None)  # the plugin starts its own server
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "naq.testing", "-p", "no:cacheprovider",
         f"--junitxml={report}", *args],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result, ET.parse(report)


@pytest.mark.slow
@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist-2"])
def test_example_project_passes_on_both_backends(tmp_path, args):
    result, report = run_example_tests(tmp_path / "report.xml", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    suite = report.getroot().find("testsuite")
    assert suite is not None
    for counter in ("failures", "errors", "skipped"):
        assert suite.get(counter) == "0", result.stdout
    names = [case.get("name", "") for case in suite.iter("testcase")]
    assert len(names) == int(suite.get("tests", "0")) >= 15
    assert sum("[asyncio]" in n for n in names) >= 6
    assert sum("[trio]" in n for n in names) >= 6
    assert any("[" not in n for n in names)  # the blocking (Django view) tests


def test_plugin_import_needs_neither_trio_nor_the_server_binary():
    code = (
        "import sys, naq.testing\n"
        "loaded = {'trio', 'naq.server', 'naq_sync'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_only_naqs_streams_are_wiped():
    assert all(
        map(
            is_naq_stream,
            ["NAQ_JOBS", "NAQ_DEAD", "NAQ_STATS", "NAQ_LOCKS", "KV_naq_jobs", "KV_naq_schedules"],
        )
    )
    assert not any(map(is_naq_stream, ["ORDERS", "KV_sessions", "NAQ", "naq_jobs"]))
