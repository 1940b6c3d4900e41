"""Operational errors of the long-running commands: one red line on stderr, exit code 1,
never a traceback (the README's promise), and nothing touched first.

In-process through typer's runner (an exception that escaped would be the runner's
``result.exception``, so each check asserts a clean ``SystemExit(1)``), and once in a real
process, where the interpreter itself would print an escaped exception group.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from naq.server import lock_store
from tests.clitools import invoke
from tests.conftest import ROOT

NO_SERVER = "nats://127.0.0.1:1"
REFUSED = f"naq: cannot connect to NATS at {NO_SERVER}: connection refused."


class _Ran:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def _naq(*args: str) -> _Ran:
    result = invoke(*args)
    assert isinstance(result.exception, SystemExit), result.exception  # nothing escaped
    return _Ran(result.exit_code, result.stdout, result.stderr)


def _one_line(result: _Ran | subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_a_worker_without_server_is_one_line_from_a_real_process():
    """The worker fails inside a task group: an ExceptionGroup, which used to be printed."""
    result = subprocess.run(
        [sys.executable, "-m", "naq", "worker", "--url", NO_SERVER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert _one_line(result).startswith(REFUSED)


@pytest.mark.parametrize(
    "args",
    [
        ["worker"],
        ["worker", "--burst"],
        ["worker", "--backend", "trio"],
        ["scheduler"],
        ["scheduler", "--backend", "trio"],
        ["dashboard", "--port", "0"],
        ["list-scheduled"],
    ],
    ids=lambda args: "_".join(a.strip("-") for a in args),
)
def test_no_server_is_one_line_saying_what_to_do(args):
    line = _one_line(_naq(*args, "--url", NO_SERVER))
    assert line.startswith(REFUSED), line
    assert "`naq dev` or `naq server` starts one" in line


@pytest.fixture
def taken_port():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_dev_on_a_taken_port_refuses_before_touching_the_store(tmp_path, taken_port):
    store = tmp_path / "store"
    line = _one_line(_naq("dev", "--port", str(taken_port), "--store-dir", str(store)))
    assert line.startswith(f"naq: cannot listen on 127.0.0.1:{taken_port}: ")
    assert "choose another port with --port" in line
    assert not store.exists()


def test_server_on_a_taken_port_is_one_line(tmp_path, taken_port):
    line = _one_line(_naq("server", "--port", str(taken_port), "--store-dir", str(tmp_path)))
    assert line.startswith(f"naq: cannot listen on 127.0.0.1:{taken_port}: ")


@pytest.mark.parametrize("command", ["dev", "server"])
def test_a_store_in_use_is_refused(tmp_path, command):
    lock = lock_store(tmp_path)  # as a running naq dev or naq server holds it
    try:
        line = _one_line(_naq(command, "--port", "-1", "--store-dir", str(tmp_path)))
    finally:
        if lock is not None:
            lock.close()
    assert line == (
        f"naq: the store {tmp_path} is in use by another naq dev or naq server: stop it, "
        "or choose another directory with --store-dir"
    )


def test_dashboard_on_a_taken_port_is_one_line(taken_port):
    line = _one_line(_naq("dashboard", "--port", str(taken_port), "--url", NO_SERVER))
    assert line.startswith(f"naq: the dashboard cannot listen on 127.0.0.1:{taken_port}: ")
