"""Job functions for the tests; importable by workers in subprocesses too."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio


def add(a, b):
    return a + b


async def async_add(a, b):
    await anyio.sleep(0)
    return a + b


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def fail(message="boom"):
    raise ValueError(message)


def fail_until(marker: str, failures: int):
    """Fail the first ``failures`` calls (counted in a file), then succeed."""
    path = Path(marker)
    calls = len(path.read_text().splitlines()) if path.exists() else 0
    with path.open("a") as f:
        f.write("call\n")
    if calls < failures:
        raise RuntimeError(f"failure {calls + 1}")
    return calls + 1


def record_run(marker: str, seconds: float = 0.0, value: object = "done"):
    """Append a line to ``marker`` when it starts, then sleep (a sync job)."""
    with Path(marker).open("a") as f:
        f.write("run\n")
    time.sleep(seconds)
    return value


async def async_record_run(marker: str, seconds: float = 0.0, value: object = "done"):
    """Append a line to ``marker`` when it starts, then sleep on the worker's backend."""
    with Path(marker).open("a") as f:
        f.write("run\n")
    await anyio.sleep(seconds)
    return value


async def async_sleep(seconds: float):
    await anyio.sleep(seconds)
    return "slept"


def sync_sleep(seconds: float):
    time.sleep(seconds)
    return "slept"


async def trio_only():
    """Works only on a Trio worker: uses trio directly."""
    import trio

    await trio.sleep(0.01)
    return f"trio {trio.lowlevel.current_task().name is not None}"


def unpicklable_result():
    import threading

    return threading.Lock()


def signal_run(port: int, seconds: float = 0.0, value: object = "done"):
    """Connect to the test's listener on ``port`` when the body starts, then sleep."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"started")
    time.sleep(seconds)
    return value


_barriers: dict[str, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def rendezvous(key: str, parties: int, value: object, timeout: float = 60.0):
    """Return ``value`` once ``parties`` jobs with this ``key`` run at the same time.

    For an in-process worker (the barrier lives in this module); raises BrokenBarrierError
    when they do not all get there within ``timeout``.
    """
    with _barriers_lock:
        barrier = _barriers.setdefault(key, threading.Barrier(parties))
    barrier.wait(timeout)
    return value


def wait_for_gate(port: int, value: object = "opened"):
    """Connect to the test's listener on ``port`` and block until it sends a byte."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(120)
        conn.recv(1)
    return value


def sum_of_dependencies(extra: int = 0):
    """Sum the results of the jobs this one depends on."""
    import naq

    return sum(naq.current_job().dependency_results.values()) + extra


async def report_progress(steps: int):
    import naq

    job = naq.current_job()
    for step in range(1, steps + 1):
        job.set_progress(step / steps, step=step)
        await anyio.sleep(0.05)
    return job.record.meta


def sync_report_progress(steps: int):
    import naq

    job = naq.current_job()
    for step in range(1, steps + 1):
        job.set_progress(step / steps, step=step)
        time.sleep(0.05)
    return steps


def sync_until_cancelled(port: int, limit: float = 30.0):
    """Signal the test, then loop until the job sees its cancellation flag."""
    import naq

    signal_run(port)
    deadline = time.monotonic() + limit
    while not naq.current_job().cancelled:
        if time.monotonic() > deadline:
            return "never cancelled"
        time.sleep(0.01)
    return "saw cancellation"


async def async_signal_and_wait(port: int, seconds: float = 30.0):
    with socket_connection(port):
        pass
    await anyio.sleep(seconds)
    return "not cancelled"


def socket_connection(port: int):
    import socket

    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"started")
    return conn


def signal_then_sleep_once(port: int, marker: str, seconds: float, value: object = "done"):
    """Signal the test on ``port``, then sleep ``seconds`` on the first run only (a sync job)."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"started")
    path = Path(marker)
    first = not path.exists()
    path.touch()
    if first:
        time.sleep(seconds)
    return value


def append_line(path: str, line: str, seconds: float = 0.0):
    """Append ``"<pid> <line>"`` to ``path`` in one write when it starts, then sleep.

    One ``O_APPEND`` write per run, so concurrent runs in several processes never interleave:
    fault tests count runs per job from this file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{os.getpid()} {line}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return line


async def async_append_line(path: str, line: str):
    """:func:`append_line` as an async job (no thread hop: cheap for 100,000 jobs)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{os.getpid()} {line}\n".encode())
    finally:
        os.close(fd)
    return None


def big_result(size: int, marker: str | None = None):
    """A result of ``size`` characters (to exceed the server's max_payload)."""
    if marker is not None:
        append_line(marker, "run")
    return "x" * size


def set_result():
    """A result JSON cannot carry."""
    return {1, 2, 3}


def whoami():
    """A def job's view of itself: its job id, its thread, and a context variable."""
    import naq

    return {
        "job_id": naq.current_job().id,
        "thread": threading.current_thread().name,
        "ident": threading.get_ident(),
        "daemon": threading.current_thread().daemon,
    }


def thread_ident_after(seconds: float):
    """Sleep, then return the thread's ident: spread over threads, jobs show the bound."""
    time.sleep(seconds)
    return threading.get_ident()


async def async_thread_ident():
    """An async job's thread: the worker's event loop thread."""
    await anyio.sleep(0)
    return threading.get_ident()


async def async_fail(message="boom"):
    await anyio.sleep(0)
    raise ValueError(message)


def make_hooks():
    """Worker hooks by import path (``--hooks tests.jobs:make_hooks``)."""
    import naq

    return naq.WorkerHooks(before_job=lambda record: None)


def marker_hooks():
    """Hooks that append each job's id to the file named by ``NAQ_TEST_HOOK_MARKER``."""
    import naq

    def mark(record):
        with Path(os.environ["NAQ_TEST_HOOK_MARKER"]).open("a") as f:
            f.write(f"{record.id}\n")

    return naq.WorkerHooks(before_job=mark)


_probes: dict[str, list[int]] = {}
"""Limit probes of this process: key -> [running now, most at once]."""
_probes_lock = threading.Lock()


async def limit_probe(key: str, seconds: float):
    """Count how many probes of ``key`` run at once in this process (both of a test's
    workers run in it), for ``probe_most``."""
    import anyio

    with _probes_lock:
        state = _probes.setdefault(key, [0, 0])
        state[0] += 1
        state[1] = max(state[1], state[0])
    try:
        await anyio.sleep(seconds)
    finally:
        with _probes_lock:
            state[0] -= 1
    return key


def sync_limit_probe(key: str, seconds: float):
    """``limit_probe`` as a ``def`` job: it runs in a job thread."""
    with _probes_lock:
        state = _probes.setdefault(key, [0, 0])
        state[0] += 1
        state[1] = max(state[1], state[0])
    try:
        time.sleep(seconds)
    finally:
        with _probes_lock:
            state[0] -= 1
    return key


def probe_most(key: str) -> int:
    """The most probes of ``key`` that ran at once."""
    with _probes_lock:
        return _probes.get(key, [0, 0])[1]
