"""Scripts that use naq_sync and exit: real subprocesses, which must end promptly."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import naq_sync
from naq._settings import DEFAULT_TIMEOUT
from tests.conftest import ROOT, worker_in_thread

PROMPT = 30.0
"""Seconds within which each script must have exited (a hang fails the test)."""

ENQUEUE_AND_EXIT = """
import sys
import naq_sync

ids = [naq_sync.enqueue("tests.jobs:add", i, i, queue=sys.argv[1]).id for i in range(20)]
print(" ".join(ids))
"""

EXIT_WHILE_A_THREAD_WAITS = """
import sys
import threading
import naq_sync

waiting = threading.Event()

def wait_forever():
    job = naq_sync.enqueue("tests.jobs:add", 1, 2, queue=sys.argv[1])  # nobody serves it
    waiting.set()
    job.result()  # no timeout

threading.Thread(target=wait_forever, daemon=True).start()
assert waiting.wait(30)
print("exiting")
"""

EXIT_WITH_AN_ENQUEUE_STUCK_ON_A_DEAD_SERVER = """
import asyncio
import os
from naq.server import EmbeddedServer
from naq._loop_thread import shared_loop

server = EmbeddedServer()
os.environ["NAQ_NATS_URL"] = server.start()
import naq_sync

naq_sync.enqueue("tests.jobs:add", 1, 2)  # connected
server.stop()
# An enqueue in flight, queued on the loop thread before the exit's close of the client:
client = naq_sync.default_client()
asyncio.run_coroutine_threadsafe(client._async.enqueue("tests.jobs:add", 3, 4), shared_loop())
print("exiting")
"""


def _run_script(
    source: str, *args: str, url: str = ""
) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "NAQ_NATS_URL": url} if url else dict(os.environ)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", source, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROMPT,
    )
    return result, time.monotonic() - started


def test_script_that_enqueues_and_exits(nats_url, queue_name):
    result, _ = _run_script(ENQUEUE_AND_EXIT, queue_name, url=nats_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    ids = result.stdout.split()
    assert len(ids) == 20
    # Every job the script enqueued is stored and runs.
    with naq_sync.Client(nats_url) as client, worker_in_thread(nats_url, [queue_name]):
        assert [client.fetch_job(i).result(timeout=30) for i in ids] == [n + n for n in range(20)]


def test_script_exits_while_a_daemon_thread_waits_for_a_result(nats_url, queue_name):
    result, _ = _run_script(EXIT_WHILE_A_THREAD_WAITS, queue_name, url=nats_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    # Nothing was left unsent. (Closing the client wakes the waiting thread with
    # NaqConnectionError; Python may print part of that thread's traceback as it shuts down.)
    assert "RuntimeWarning" not in result.stderr


def test_enqueue_unfinished_at_exit_is_reported_not_waited_for():
    result, seconds = _run_script(EXIT_WITH_AN_ENQUEUE_STUCK_ON_A_DEAD_SERVER)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert "RuntimeWarning: naq_sync at exit: closed the connection to nats://" in result.stderr
    assert "with 1 call(s) unfinished" in result.stderr
    # It did not sit out the client's timeout waiting for a server that is gone.
    assert seconds < DEFAULT_TIMEOUT
