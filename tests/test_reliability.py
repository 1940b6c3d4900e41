"""Faults with real processes: a SIGKILLed worker, a restarted server, a lost cluster node,
and a large backlog. Every job must finish; only jobs in flight at a fault may run twice.

Each job appends ``"<pid> <token>"`` to a runs file when its body starts, so the test counts
runs per job and knows which process ran them. The counts (enqueued, finished, run twice,
dead-lettered, lost) go to the "naq job counts" terminal summary.

These tests drive subprocesses (workers, servers, a producer) and run on asyncio only: the
worker backends are covered by restarting the killed worker on Trio, and by the rest of the
suite; running each fault twice would double the suite's slowest minute for nothing new.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import nats.errors
import pytest

import naq
import naq_sync
from naq._transport import names
from naq.server import EmbeddedServer
from tests import jobs
from tests._cluster import LocalCluster
from tests._memory import peak_rss_kib, rss_kib
from tests.conftest import ROOT, start_worker_process

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FINISHED = naq.JobStatus.FINISHED
WARM = 20_000
"""Jobs the backlog's worker processes before its memory is first measured (warmed up)."""
FLAT_MIB = 6
"""How much the backlog's worker may grow from WARM jobs to 100,000: jobs in flight and
allocator noise. A worker that kept each job's record (a decoded finished record takes about
1.4 KiB) would grow about 110 MiB."""
CLUSTER_CONCURRENCY = 20
"""The cluster test's worker: at most this many jobs run at once."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _runs(path: Path) -> tuple[collections.Counter[str], dict[str, str]]:
    """Runs per token, and the pid of each token's first run."""
    counter: collections.Counter[str] = collections.Counter()
    first_pid: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            pid, token = line.split()
            counter[token] += 1
            first_pid.setdefault(token, pid)
    return counter, first_pid


async def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            await anyio.to_thread.run_sync(lambda: process.wait(timeout=30))
        except subprocess.TimeoutExpired:
            process.kill()
            await anyio.to_thread.run_sync(process.wait)


async def _ack_pending(client: naq.Client, queue: str) -> int:
    """Messages delivered to the queue's workers and not yet acknowledged."""
    transport = client._connection.transport

    async def read() -> int:
        info = await transport._js.consumer_info(names.JOBS_STREAM, names.consumer_name(queue))
        return info.num_ack_pending

    return await client._connection.call(read)


async def _dead_letter_count(client: naq.Client, queue: str) -> int:
    connection = client._connection
    return await connection.call(connection.transport.dead_letter_count, queue)


def _id(call: naq.Call) -> str:
    """The explicit job id of a call: enqueueing again what was not confirmed needs it."""
    assert call.job_id is not None, "enqueueing again needs an explicit job id"
    return call.job_id


async def _enqueue_all(
    client: naq.Client, queue: str, calls: Sequence[naq.Call], timeout: float = 60
) -> tuple[list[naq.Job], int]:
    """Enqueue with explicit ids, enqueueing again what the server did not confirm.

    That is what naq's EnqueueError tells a producer to do during a fault: the same ids
    make the retry idempotent (JetStream's duplicate window drops a second copy).
    Returns the jobs and how many of them needed enqueueing again.
    """
    jobs_by_id: dict[str, naq.Job] = {}
    pending = list(calls)
    retried: set[str] = set()
    with anyio.fail_after(timeout):
        while pending:
            try:
                for job in await client.enqueue_many(pending, queue=queue):
                    jobs_by_id[job.id] = job
                pending = []
            except naq.EnqueueError as exc:
                failed = set(exc.failed_ids)
                retried |= failed
                for call in pending:
                    if _id(call) not in failed:
                        jobs_by_id[_id(call)] = await client.fetch_job(_id(call))
                pending = [call for call in pending if _id(call) in failed]
                await anyio.sleep(0.5)  # the fault is being repaired: give it a moment
            except naq.NaqConnectionError:
                retried |= {_id(call) for call in pending}
                await anyio.sleep(0.5)
    return [jobs_by_id[_id(call)] for call in calls], len(retried)


def _enqueue_all_blocking(
    client: naq_sync.Client, queue: str, calls: Sequence[naq.Call], timeout: float = 60
) -> tuple[list[naq_sync.Job], int]:
    """:func:`_enqueue_all` for naq_sync: enqueue again, same ids, what was not confirmed."""
    pending, retried = list(calls), set()
    deadline = time.monotonic() + timeout
    while pending:
        try:
            client.enqueue_many(pending, queue=queue)
            pending = []
        except naq.EnqueueError as exc:
            failed = set(exc.failed_ids)
            retried |= failed
            pending = [call for call in pending if _id(call) in failed]
        except naq.NaqConnectionError:
            retried |= {_id(call) for call in pending}
        if pending:
            assert time.monotonic() < deadline, f"{len(pending)} jobs never confirmed"
            time.sleep(0.5)  # the fault is being repaired: give it a moment
    return [client.fetch_job(_id(call)) for call in calls], len(retried)


async def test_sigkilled_worker_loses_no_job(client, nats_url, queue_name, tmp_path, counts):
    """1,000 jobs; the worker is SIGKILLed a third of the way in and another takes over."""
    runs, total = tmp_path / "runs", 1000
    calls = [naq.Call(jobs.append_line, (str(runs), f"j{i}", 0.005)) for i in range(total)]
    handles = await client.enqueue_many(calls, queue=queue_name)
    doomed = start_worker_process(
        nats_url, [queue_name], "--ack-wait", "2", "--concurrency", "20", "--log-level", "WARNING"
    )
    try:
        await handles[total // 3].wait_until(FINISHED, timeout=90)
        doomed.send_signal(signal.SIGKILL)
        assert await anyio.to_thread.run_sync(doomed.wait) == -signal.SIGKILL
    finally:
        if doomed.poll() is None:
            doomed.kill()
    in_flight = await _ack_pending(client, queue_name)  # unacknowledged at the kill
    ran_before, _ = _runs(runs)
    successor = start_worker_process(
        nats_url, [queue_name], "--ack-wait", "2", "--concurrency", "20", "--backend", "trio"
    )
    try:
        for i, job in enumerate(handles):
            assert await job.result(timeout=90) == f"j{i}"
    finally:
        await _stop(successor)
    per_job, first_pid = _runs(runs)
    twice = sorted(token for token, n in per_job.items() if n > 1)
    assert set(per_job) == {f"j{i}" for i in range(total)}, "a job never ran"
    assert max(per_job.values()) <= 2
    assert len(twice) <= in_flight, "a job that was not in flight at the kill ran twice"
    assert all(first_pid[token] == str(doomed.pid) for token in twice)
    assert await client.queue(queue_name).count() == 0
    dead = await _dead_letter_count(client, queue_name)
    assert dead == 0
    counts(
        enqueued=total,
        finished=len(per_job),
        ran_before_kill=len(ran_before),
        in_flight_at_kill=in_flight,
        run_twice=len(twice),
        dead_lettered=dead,
        lost=total - len(per_job),
    )


def test_server_restart_loses_no_job(tmp_path, queue_name, counts):
    """nats-server (file storage) is SIGKILLed and restarted on its port during a run.

    A worker subprocess and a naq_sync client reconnect by themselves. A plain sync test:
    naq_sync is the client under test, and the worker is a subprocess.
    """
    runs, store = tmp_path / "runs", tmp_path / "store"
    server = EmbeddedServer(store_dir=store)
    url = server.start()
    worker = None
    try:
        worker = start_worker_process(
            url, [queue_name], "--ack-wait", "2", "--concurrency", "10", "--log-level", "WARNING"
        )
        with naq_sync.Client(url) as client:
            before = client.enqueue_many(
                [naq.Call(jobs.append_line, (str(runs), f"a{i}", 0.01)) for i in range(300)],
                queue=queue_name,
            )
            before[60].wait_until(FINISHED, timeout=60)
            process = server.process
            assert process is not None
            process.kill()  # SIGKILL: no clean shutdown, file storage must hold
            process.wait()
            server.stop()
            server = EmbeddedServer(port=server.port, store_dir=store)
            server.start()
            calls = [
                naq.Call(jobs.append_line, (str(runs), f"b{i}", 0.01), job_id=f"{queue_name}-b{i}")
                for i in range(200)
            ]
            after, retried = _enqueue_all_blocking(client, queue_name, calls)
            for job in [*before, *after]:
                job.result(timeout=120)
            dead = len(client.dead_letters(queue_name))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
    per_job, _ = _runs(runs)
    expected = {f"a{i}" for i in range(300)} | {f"b{i}" for i in range(200)}
    assert set(per_job) == expected
    twice = [token for token, n in per_job.items() if n > 1]
    assert dead == 0
    counts(
        enqueued=len(expected),
        finished=len(per_job),
        enqueue_retries=retried,
        run_twice=len(twice),
        dead_lettered=dead,
        lost=len(expected - set(per_job)),
    )


async def test_cluster_node_killed_loses_no_job(tmp_path, counts):
    """3-node JetStream cluster, streams with 3 replicas; the jobs stream's leader is killed.

    Asserted in every run: every job runs and its stored record says finished, none is
    dead-lettered, no job runs twice before the kill, no result wait misses its outcome,
    and only jobs in flight at the kill run again (once more each at most).
    """
    runs, total, queue = tmp_path / "runs", 600, "cluster"
    with LocalCluster(3) as cluster:
        client = await _connect_when_ready(cluster.url)
        options = ["--ack-wait", "2", "--concurrency", str(CLUSTER_CONCURRENCY)]
        worker = start_worker_process(
            cluster.url, [queue], *options, "--log-level", "WARNING", env={"NAQ_REPLICAS": "3"}
        )
        try:
            calls = [
                naq.Call(jobs.append_line, (str(runs), f"j{i}", 0.005), job_id=f"c-{i}")
                for i in range(total)
            ]
            first, retried_first = await _enqueue_all(client, queue, calls[: total // 2])
            await first[total // 4].wait_until(FINISHED, timeout=90)
            leader = await _stream_leader(client, names.JOBS_STREAM)
            assert await _stream_replicas(client, names.JOBS_STREAM) == 3
            # Unacknowledged just before the kill; the worker may take one more slot-full of
            # jobs (its concurrency) before it: together, at most the jobs in flight at it.
            in_flight = await _ack_pending(client, queue) + CLUSTER_CONCURRENCY
            runs_before_kill = len(_run_lines(runs))  # runs started before this are earlier
            cluster.kill(leader)
            second, retried_second = await _enqueue_all(client, queue, calls[total // 2 :], 120)
            missed: list[str] = []
            for job in [*first, *second]:
                try:
                    await job.result(timeout=20)
                except naq.ResultTimeout:
                    # Issue 22: the wait missed the outcome, but the job is not lost.
                    assert await job.get_status() is FINISHED, f"job {job.id} never finished"
                    missed.append(job.id)
            dead = await _dead_letter_count(client, queue)
        finally:
            await _stop(worker)
            await client.__aexit__(None, None, None)
    lines = _run_lines(runs)
    run_at: dict[str, list[int]] = collections.defaultdict(list)  # token -> its runs' lines
    for line, (_, token) in enumerate(lines):
        run_at[token].append(line)
    twice = sorted(token for token, at in run_at.items() if len(at) > 1)
    counts(
        enqueued=total,
        finished=len(run_at),
        killed=leader,
        runs_before_kill=runs_before_kill,
        in_flight_at_kill_at_most=in_flight,
        enqueue_retries=retried_first + retried_second,
        run_twice=len(twice),
        most_runs=max((len(at) for at in run_at.values()), default=0),
        dead_lettered=dead,
        result_waits_missed=len(missed),
        lost=total - len(run_at),
    )
    assert set(run_at) == {f"j{i}" for i in range(total)}, "a job never ran"
    assert dead == 0
    before = [token for token in twice if run_at[token][1] < runs_before_kill]
    assert before == [], f"jobs ran twice on the healthy cluster, before the kill: {before}"
    most = max(len(at) for at in run_at.values())
    assert missed == [], f"result waits missed a stored outcome: {missed}"
    assert len(twice) <= in_flight, (
        f"{len(twice)} of {total} jobs ran again after the failover, "
        f"but at most {in_flight} were in flight at it"
    )
    assert most <= 2, f"a job ran {most} times around one failover"


@pytest.mark.timeout(240)
async def test_cluster_failover_twice_runs_jobs_in_flight_only(tmp_path, counts):
    """Issue 22 as a user meets it: 3-node cluster, replicas 3, two workers of concurrency 20,
    2,000 ``def`` jobs of 10 ms, the default ack wait (30 s). The jobs stream's leader is
    killed and restarted, then a second node is killed, while every job has a result waiter.

    Asserted: no job lost or dead-lettered, no result wait misses a stored outcome, and the
    jobs that run again are at most those in flight at the kills (unacknowledged just before
    each, plus what the two workers may take between that read and the kill).
    """
    runs, total, queue, workers = tmp_path / "runs", 2000, "failover", 2
    with LocalCluster(3) as cluster:
        client = await _connect_when_ready(cluster.url)
        options = ["--concurrency", str(CLUSTER_CONCURRENCY), "--log-level", "WARNING"]
        procs = [
            start_worker_process(cluster.url, [queue], *options, env={"NAQ_REPLICAS": "3"})
            for _ in range(workers)
        ]
        try:
            calls = [
                naq.Call(jobs.append_line, (str(runs), f"j{i}", 0.01), job_id=f"f-{i}")
                for i in range(total)
            ]
            handles, retried = await _enqueue_all(client, queue, calls)
            outcomes: dict[str, str] = {}

            async def wait(job: naq.Job) -> None:
                try:
                    await job.result(timeout=120)
                    outcomes[job.id] = "ok"
                except naq.ResultTimeout:
                    outcomes[job.id] = "missed"

            in_flight, killed = 0, []
            async with anyio.create_task_group() as tg:
                for job in handles:
                    tg.start_soon(wait, job)
                for at_runs in (total // 5, total // 2):
                    await _until(lambda n=at_runs: len(_run_lines(runs)) >= n, 60)
                    leader = await _once_answered(lambda: _stream_leader(client, names.JOBS_STREAM))
                    in_flight += await _once_answered(lambda: _ack_pending(client, queue))
                    in_flight += workers * CLUSTER_CONCURRENCY
                    if killed and leader == killed[0]:  # the second kill: another node
                        leader = next(n for n in cluster.processes if n != killed[0])
                    cluster.kill(leader)
                    killed.append(leader)
                    if len(killed) == 1:  # the first one comes back before the second kill
                        await _until(lambda: len(_run_lines(runs)) >= total // 3, 60)
                        cluster.restart(leader)
            # Redeliveries (an ack lost in an election) come after the ack wait: count them.
            with anyio.fail_after(90):
                while await _once_answered(lambda: _ack_pending(client, queue)) != 0:
                    await anyio.sleep(0.5)
            dead = await _once_answered(lambda: _dead_letter_count(client, queue))
            statuses = collections.Counter(
                [(await job.get_status()).value for job in handles if outcomes[job.id] != "ok"]
            )
        finally:
            for proc in procs:
                await _stop(proc)
            await client.__aexit__(None, None, None)
    per_job, _ = _runs(runs)
    twice = [token for token, n in per_job.items() if n > 1]
    missed = [job_id for job_id, outcome in outcomes.items() if outcome != "ok"]
    counts(
        enqueued=total,
        finished=len(per_job),
        killed=",".join(killed),
        in_flight_at_kills_at_most=in_flight,
        enqueue_retries=retried,
        run_twice=len(twice),
        most_runs=max(per_job.values(), default=0),
        dead_lettered=dead,
        result_waits_missed=len(missed),
        lost=total - len(per_job),
    )
    assert set(per_job) == {f"j{i}" for i in range(total)}, "a job never ran"
    assert dead == 0
    assert missed == [], f"result waits missed a stored outcome: {missed[:5]} ({statuses})"
    assert len(twice) <= in_flight, (
        f"{len(twice)} of {total} jobs ran again, at most {in_flight} were in flight at the kills"
    )
    assert max(per_job.values()) <= 3, "a job ran more than once per kill"


async def _once_answered(read, timeout: float = 30):
    """``await read()`` once the cluster answers: just after a kill, JetStream API calls
    time out (or find no leader) until a new leader is elected; each try is bounded."""
    with anyio.fail_after(timeout):
        while True:
            try:
                answer = await read()
            except (naq.NaqError, nats.errors.Error) as exc:
                print(f"not answered yet ({exc!r}); asking again")
            else:
                if answer is not None and answer != "":
                    return answer
            await anyio.sleep(0.5)


async def _until(condition, timeout: float) -> None:
    """Wait until ``condition()`` holds, checking every 20 ms; TimeoutError after ``timeout``."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def _run_lines(path: Path) -> list[tuple[str, str]]:
    """Every run as ``(pid, token)``, in the order the runs started (one write each)."""
    if not path.exists():
        return []
    return [(pid, token) for pid, token in (line.split() for line in path.read_text().splitlines())]


async def _connect_when_ready(url: str, timeout: float = 30) -> naq.Client:
    """A connected client with replicas=3, once the cluster has elected its JetStream leader."""
    with anyio.fail_after(timeout):
        while True:
            client = naq.Client(url, replicas=3)
            try:
                await client.__aenter__()
                return client
            except naq.NaqError:
                await client.__aexit__(None, None, None)
                await anyio.sleep(0.5)  # start-up: the meta leader is not elected yet


async def _stream_info(client: naq.Client, stream: str):
    transport = client._connection.transport

    async def read():
        return await transport._js.stream_info(stream)

    return await client._connection.call(read)


async def _stream_leader(client: naq.Client, stream: str) -> str:
    return (await _stream_info(client, stream)).cluster.leader


async def _stream_replicas(client: naq.Client, stream: str) -> int:
    return (await _stream_info(client, stream)).config.num_replicas


async def test_backlog_of_100000_jobs_keeps_memory_bounded(queue_name, tmp_path, counts):
    """100,000 jobs enqueued while no worker runs, then processed: memory stays bounded.

    Producer and worker are subprocesses so each one's peak (VmHWM) is its own. A server of
    its own: 100,000 kept records would slow the session's server for the tests after.

    Asserted: every job runs once; the producer's peak stays under 100 MiB (measured 38-40);
    the worker's RSS grows by at most FLAT_MIB from WARM jobs to the last (measured 0.3 and
    0.6 MiB since the worker stops fetching while ended jobs wait to be settled; 9-33 MiB
    before, when a backlog of ended but unsettled jobs could grow without bound).
    """
    with EmbeddedServer() as server:
        await _backlog(server.url, queue_name, tmp_path, counts)


async def _backlog(nats_url: str, queue_name: str, tmp_path: Path, counts) -> None:
    runs, total = tmp_path / "runs", 100_000
    producer = await anyio.run_process(
        [sys.executable, "-m", "tests._producer", nats_url, queue_name, str(total), str(runs)],
        cwd=ROOT,
    )
    produced = json.loads(producer.stdout.decode().strip().splitlines()[-1])
    async with naq.Client(nats_url) as client:
        queue = client.queue(queue_name)
        assert await queue.count() == total

        async def processed(done: int, timeout: float) -> None:
            """Wait until at least ``done`` jobs are acknowledged (out of the queue)."""
            with anyio.fail_after(timeout):
                while await queue.count() > total - done:
                    await anyio.sleep(0.2)

        worker = start_worker_process(
            nats_url, [queue_name], "--concurrency", "100", "--log-level", "WARNING"
        )
        try:
            await processed(WARM, timeout=120)
            warm_kib = rss_kib(worker.pid)
            await processed(total // 2, timeout=120)
            half_kib = rss_kib(worker.pid)
            last = await client.fetch_job(produced["last_id"])
            await last.wait_until(FINISHED, timeout=240)
            await processed(total, timeout=60)  # the last few in flight
            end_kib = rss_kib(worker.pid)
            worker_peak = peak_rss_kib(worker.pid)
        finally:
            await _stop(worker)
        dead = await _dead_letter_count(client, queue_name)
    per_job, _ = _runs(runs)
    assert len(per_job) == total
    assert max(per_job.values()) == 1
    assert dead == 0
    producer_mib, worker_mib = produced["peak_rss_kib"] // 1024, worker_peak // 1024
    growth_mib = (end_kib - warm_kib) / 1024
    counts(
        enqueued=total,
        finished=len(per_job),
        run_twice=0,
        dead_lettered=dead,
        producer_peak_mib=producer_mib,
        worker_peak_mib=worker_mib,
        worker_rss_mib_at=f"{WARM}:{warm_kib // 1024},{total // 2}:{half_kib // 1024},"
        f"{total}:{end_kib // 1024}",
        worker_growth_mib=round(growth_mib, 1),
    )
    assert producer_mib < 100, "the producer's memory grew with the backlog"
    assert worker_mib < 200, "the worker's memory grew with the backlog"
    assert growth_mib <= FLAT_MIB, f"the worker grew {growth_mib:.1f} MiB over {total - WARM} jobs"
