"""``naq dead-letters`` and ``naq job-control ID cancel`` via typer's runner, on the test server."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import anyio
import pytest
from typer.testing import CliRunner

import naq
from naq.cli import app
from tests import jobs
from tests.conftest import running_worker

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_dead_letters_list_requeue_delete(nats_url, queue_name, tmp_path):
    marker = str(tmp_path / "calls")

    async def fail_two() -> tuple[str, str]:
        async with naq.Client(nats_url) as client, running_worker(nats_url, [queue_name]):
            flaky = await client.enqueue(jobs.fail_until, marker, 1, queue=queue_name)
            broken = await client.enqueue(jobs.fail, queue=queue_name)
            for job in (flaky, broken):
                with pytest.raises(naq.JobFailed):
                    await job.result(timeout=20)
            return flaky.id, broken.id

    flaky_id, broken_id = anyio.run(fail_two)
    listed = json.loads(
        _invoke("dead-letters", "list", "--url", nats_url, "--queue", queue_name, "--json")
    )
    assert {row["job_id"] for row in listed} == {flaky_id, broken_id}
    assert {row["function"] for row in listed} == {"tests.jobs:fail_until", "tests.jobs:fail"}
    # `naq failed`, the old name, is the same command (hidden from --help)
    assert json.loads(
        _invoke("failed", "list", "--url", nats_url, "--queue", queue_name, "--json")
    ) == listed  # fmt: skip
    for row in listed:  # the runs the job had, as its reason says; times in ISO 8601, UTC
        assert row["attempts"] == 1
        assert "failed after 1 attempt(s)" in row["reason"]
        assert datetime.fromisoformat(row["time"]).utcoffset() == timedelta(0)
        assert "T" in row["time"]
    table = _invoke("dead-letters", "list", "--url", nats_url, "--queue", queue_name)
    assert "2 dead letter(s)" in table
    assert "…" not in table
    # Not a terminal: ids are whole, so one copied from the table works.
    copied = [word for word in table.split() if word in (flaky_id, broken_id)]
    assert sorted(copied) == sorted([flaky_id, broken_id])
    flaky_row = next(line for line in table.splitlines() if flaky_id in line)
    assert re.search(r"│\s+1\s+│", flaky_row), flaky_row  # attempts, as in the reason

    assert "requeued 1 job(s)" in _invoke("dead-letters", "requeue",
                                          copied[copied.index(flaky_id)],
                                          "--url", nats_url)  # fmt: skip
    assert "deleted 1 dead letter(s)" in _invoke("dead-letters", "delete", "--all",
                                                   "--queue", queue_name,
                                                   "--url", nats_url)  # fmt: skip

    async def requeued_result() -> object:
        async with naq.Client(nats_url) as client, running_worker(nats_url, [queue_name]):
            return await (await client.fetch_job(flaky_id)).result(timeout=20)

    assert anyio.run(requeued_result) == 2
    assert json.loads(_invoke("dead-letters", "list", "--url", nats_url, "--queue", queue_name,
                              "--json")) == []  # fmt: skip


@pytest.mark.parametrize("group", ["dead-letters", "failed"])
@pytest.mark.parametrize("action", ["requeue", "delete"])
def test_requeue_and_delete_need_ids_or_all(nats_url, group, action):
    for args in ([], ["an-id", "--all"]):
        result = runner.invoke(app, [group, action, *args, "--url", nats_url])
        assert result.exit_code == 2
        assert "name job ids, or pass --all" in result.stderr


def test_job_control_cancels_a_job(nats_url, queue_name):
    async def enqueue() -> str:
        async with naq.Client(nats_url) as client:
            return (await client.enqueue(jobs.add, 1, 2, queue=queue_name)).id

    job_id = anyio.run(enqueue)
    assert f"job {job_id}: canceled" in _invoke("job-control", job_id, "cancel", "--url", nats_url)
    assert "already ended" in _invoke("job-control", job_id, "cancel", "--url", nats_url)

    async def status() -> naq.JobStatus:
        async with naq.Client(nats_url) as client:
            return await (await client.fetch_job(job_id)).get_status()

    assert anyio.run(status) is naq.JobStatus.CANCELED
    shown = _invoke("job", job_id, "--url", nats_url)
    assert re.search(r"canceled\s+│\s+canceled on request", shown), shown
    assert "JobCanceled" not in shown and "error" not in shown
