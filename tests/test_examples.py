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
from tests.conftest import ROOT

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


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def example_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Django example's SQLite database, migrated."""
    path = str(tmp_path_factory.mktemp("django") / "db.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=APPS["django"][0],
        env={**os.environ, "NAQ_EXAMPLE_DB": path, "PYTHONPATH": _pythonpath(ROOT)},
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def django_worker(nats_url: str, example_queue: str, example_db: str) -> Iterator[str]:
    """``python manage.py naq_worker`` on the Django app's queue; yields the queue.

    One job thread, so a job that drops its thread's database connection is followed on
    that thread by the next ``def`` job.
    """
    queue = f"{example_queue}d"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "naq_worker",
            queue,
            "--url",
            nats_url,
            "--sync-threads",
            "1",
        ],
        cwd=APPS["django"][0],
        env={**os.environ, "NAQ_EXAMPLE_DB": example_db, "PYTHONPATH": _pythonpath(ROOT)},
    )
    yield queue
    _stop(process)


FLASK_WORKER = (
    "import sys, anyio, naq; from naq._integrations import prepare_worker; "
    "from naq.cli import run_until_signalled; "
    "hooks = prepare_worker(flask='app:app', path='.'); "
    "anyio.run(run_until_signalled, naq.Worker([sys.argv[1]], url=sys.argv[2], hooks=hooks))"
)
"""``naq worker --flask app:app`` as it is built (the CLI option calls the same function)."""


@pytest.fixture(scope="module")
def flask_worker(nats_url: str, example_queue: str) -> Iterator[str]:
    """A worker running jobs in the Flask app's context, on its queue; yields the queue."""
    queue = f"{example_queue}f"
    process = subprocess.Popen(
        [sys.executable, "-c", FLASK_WORKER, queue, nats_url],
        cwd=APPS["flask"][0],
        env={**os.environ, "PYTHONPATH": _pythonpath(ROOT)},
    )
    yield queue
    _stop(process)


@contextmanager
def gunicorn(
    app: str, url: str, queue: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[str]:
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
            **(env or {}),
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
def test_example_under_gunicorn(app, options, requests, nats_url, example_db, request):
    queue = request.getfixturevalue(f"{app}_worker")
    env = {"NAQ_EXAMPLE_DB": example_db}
    with gunicorn(app, nats_url, queue, *options, env=env) as base:

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
        _check_job_views(base, nats_url, queue)


def test_django_orm_jobs_enqueued_on_commit(nats_url, example_db, django_worker):
    """ORM jobs (def and async) enqueued on commit; none on rollback; the worker keeps
    working after its database connections were closed under it."""
    queue = django_worker
    env = {"NAQ_EXAMPLE_DB": example_db}
    with (
        gunicorn("django", nats_url, queue, "--workers", "2", env=env) as base,
        naq_sync.Client(nats_url) as client,
    ):

        def computed(a: int, b: int, kind: str) -> None:
            form = {"a": a, "b": b, "async": "1" if kind == "async" else "0"}
            status, body, _ = _call(base, "POST", "/sums", form)
            assert status == 202, body
            assert client.fetch_job(body["job"]).result(timeout=30) == a + b
            assert _call(base, "GET", f"/sums/{body['id']}")[:2] == (
                200,
                {"id": body["id"], "a": a, "b": b, "result": a + b},
            )

        for kind in ("def", "async"):
            computed(2, 3, kind)
        status, body, _ = _call(base, "POST", "/sums", {"a": 1, "b": 1, "rollback": "1"})
        assert (status, body["rolled_back"]) == (409, True)
        # on_commit publishes before the view returns: a published job would be found now
        with pytest.raises(naq_sync.JobNotFound):
            client.fetch_job(body["job"])
        for kind, drop in (
            ("def", "drop_database_connection"),
            ("async", "adrop_database_connection"),
        ):
            job = client.enqueue(f"naqdemo.tasks:{drop}", queue=queue)
            assert job.result(timeout=30) == "dropped"
            computed(4, 5, kind)  # the same thread's next ORM job: a fresh connection


def test_flask_job_uses_current_app(nats_url, flask_worker):
    with gunicorn("flask", nats_url, flask_worker, "--workers", "1") as base:
        status, body, _ = _call(base, "POST", "/greetings?wait=20", {"name": "Ada"})
    assert (status, body["status"], body["result"]) == (200, "finished", "Hello, Ada, from app")
