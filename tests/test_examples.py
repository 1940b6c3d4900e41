"""The Django and Flask examples under real gunicorn, with a real naq worker and nats-server.

Each app is served by gunicorn with several workers, with and without ``--preload``; the
master uses naq_sync before it forks (tests/gunicorn_hooks.py), so every worker starts with
its parent's live loop thread and connection in memory and must make its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

import naq_sync
from tests import jobs
from tests.conftest import ROOT, start_worker_process

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples"
APPS = {
    "django": (EXAMPLES / "django_app", "naqdemo.wsgi:application"),
    "flask": (EXAMPLES / "flask_app", "app:app"),
}
CLIENTS = 16
"""HTTP requests in flight at once."""


def _pythonpath(*paths: object) -> str:
    return os.pathsep.join([*map(str, paths), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


@pytest.fixture(scope="module")
def example_queue() -> str:
    return f"ex{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def example_worker(nats_url: str, example_queue: str) -> Iterator[None]:
    """One ``naq worker`` for both apps: their job modules are on its path."""
    paths = _pythonpath(APPS["django"][0], APPS["flask"][0])
    process = start_worker_process(nats_url, [example_queue], env={"PYTHONPATH": paths})
    yield
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def gunicorn(app: str, url: str, queue: str, *options: str) -> Iterator[str]:
    """Serve an example app under gunicorn on a free port; yields its base URL."""
    directory, target = APPS[app]
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--chdir", str(directory)),
            *("--bind", "127.0.0.1:0", "--config", str(ROOT / "tests" / "gunicorn_hooks.py")),
            *options,
            target,
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "NAQ_NATS_URL": url,
            "NAQ_QUEUE": queue,
            "PYTHONPATH": _pythonpath(ROOT),
        },
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a stuck worker can be killed too
    )
    log: list[str] = []
    listening = threading.Event()

    def read_log() -> None:  # drain stderr so gunicorn never blocks on a full pipe
        for line in process.stderr:
            log.append(line)
            if "Listening at: " in line:
                listening.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert listening.wait(60), "gunicorn did not start:\n" + "".join(log)
        line = next(line for line in log if "Listening at: " in line)
        yield line.split("Listening at: ")[1].split()[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=10)
    assert process.returncode == 0, "".join(log)
    assert "Traceback" not in "".join(log), "".join(log)


def _call(base: str, method: str, path: str, form: dict | None = None) -> tuple[int, dict, dict]:
    """One HTTP request: status, JSON body, headers (error statuses included)."""
    data = urlencode(form).encode() if form is not None else None
    request = Request(base + path, data=data, method=method)
    try:
        with urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def _check_job_views(base: str, nats_url: str, queue: str) -> None:
    """The enqueue view returns an id; the result view answers 202 while a job runs, then 200."""
    status, body, headers = _call(base, "POST", "/jobs", {"a": 2, "b": 3})
    assert (status, body["status"], headers["Location"]) == (202, "queued", f"/jobs/{body['id']}")
    assert _call(base, "GET", f"/jobs/{body['id']}?wait=30")[:2] == (
        200,
        {"id": body["id"], "status": "finished", "result": 5},
    )
    # A job held at a gate by the test is still running when the view's wait runs out.
    with socket.create_server(("127.0.0.1", 0)) as gate, naq_sync.Client(nats_url) as client:
        gate.settimeout(60)
        job = client.enqueue(jobs.wait_for_gate, gate.getsockname()[1], queue=queue)
        status, body, _ = _call(base, "GET", f"/jobs/{job.id}?wait=0.2")
        assert status == 202
        assert body["status"] in {"queued", "started"}
        connection, _ = gate.accept()
        with connection:
            connection.sendall(b"go")
            status, body, _ = _call(base, "GET", f"/jobs/{job.id}?wait=30")
    assert (status, body["result"]) == (200, "opened")
    assert _call(base, "GET", "/jobs/no-such-job")[0] == 404


@pytest.mark.parametrize(
    ("app", "options", "requests"),
    [
        ("django", ["--workers", "4", "--preload"], 200),
        ("django", ["--workers", "2"], 40),
        ("flask", ["--workers", "4", "--preload"], 200),
        ("flask", ["--workers", "2", "--threads", "4"], 40),
    ],
    ids=["django-preload", "django", "flask-preload", "flask-threads"],
)
def test_example_under_gunicorn(app, options, requests, nats_url, example_queue, example_worker):
    with gunicorn(app, nats_url, example_queue, *options) as base:

        def enqueue_and_wait(n: int) -> tuple[int, dict, dict]:
            return _call(base, "POST", "/jobs?wait=20", {"a": n, "b": 1000})

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(enqueue_and_wait, range(requests)))
        unexpected = [
            (n, status, body)
            for n, (status, body, _) in enumerate(answers)
            if (status, body.get("status"), body.get("result")) != (200, "finished", n + 1000)
        ]
        assert unexpected == []
        assert len({body["id"] for _, body, _ in answers}) == requests
        _check_job_views(base, nats_url, example_queue)
