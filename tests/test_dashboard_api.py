"""The dashboard's pages and JSON API over real HTTP, with a real server and worker."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import anyio
import pytest

import naq
from naq.dashboard._security import parse_auth

from . import jobs
from .conftest import running_worker
from .dashboardtools import csrf_token, http, running_dashboard

pytestmark = pytest.mark.anyio


async def _failed_job(client: naq.Client, queue: str) -> naq.Job:
    job = await client.enqueue(jobs.fail, "kaput", queue=queue)
    with pytest.raises(naq.JobFailed):
        await job.result(timeout=20)
    return job


async def test_pages_and_assets_are_self_contained(client):
    async with running_dashboard(client) as base:
        page = await http("GET", base + "/")
        assert page.status == 200
        assert "text/html" in page.headers["content-type"]
        assert csrf_token(page.text)
        for asset in ("/static/dashboard.js", "/static/dashboard.css"):
            reply = await http("GET", base + asset)
            assert reply.status == 200
            text = reply.text.replace("http://www.w3.org/2000/svg", "")  # a name, not a URL
            assert "http://" not in text and "https://" not in text  # no CDN
        assert "https://" not in page.text
        for path in ("/workers", "/schedules", "/dead-letters", "/queues/default", "/jobs/abc",
                     "/jobs", "/jobs?queue=default&status=failed"):  # fmt: skip
            assert (await http("GET", base + path)).status == 200
        moved = await http("GET", base + "/failed")  # the old address of the dead letters
        assert moved.status == 200
        assert 'data-view="dead-letters"' in moved.text
        found = await http("GET", base + "/search?q=send_mail")
        assert found.status == 200  # no such job: redirected to the jobs of that function
        assert 'data-view="jobs"' in found.text
        old_form = await http("GET", base + "/search?id=some-job")  # the old parameter
        assert 'data-view="jobs"' in old_form.text


async def test_overview_queue_and_job(client, nats_url, queue_name):
    async with running_dashboard(client) as base:
        assert (await http("GET", base + "/api/overview")).status == 200  # started: tailing
        async with running_worker(nats_url, [queue_name]) as worker:
            job = await client.enqueue(jobs.add, 2, 3, queue=queue_name, meta={"who": "test"})
            assert await job.result(timeout=20) == 5

            overview = (await http("GET", base + "/api/overview")).json()
            assert queue_name in [q["name"] for q in overview["queues"]]
            assert worker.id in [w["id"] for w in overview["workers"]]
            seen = {j["id"]: j for j in overview["recent"]}
            assert seen[job.id]["status"] == "finished"
            assert seen[job.id]["function"] == "tests.jobs:add"
            assert "func_name" not in seen[job.id]  # one key per field, as the CLI's
            assert job.id not in [d["job_id"] for d in overview["dead_letters"]]
            assert overview["dead_letter_count"] >= len(overview["dead_letters"])

            queue = (await http("GET", f"{base}/api/queues/{queue_name}")).json()
            assert queue["queue"]["workers"] == [worker.id]
            assert queue["dead_letters"] == []
            listed = (await http("GET", f"{base}/api/jobs?queue={queue_name}")).json()
            assert [j["id"] for j in listed["jobs"]] == [job.id]
            assert (listed["total"], listed["page"], listed["pages"]) == (1, 1, 1)
            assert listed["counts"] == {"finished": 1}

            workers = (await http("GET", base + "/api/workers")).json()
            assert worker.id in [w["id"] for w in workers]

        def jobs_of(query: str):
            return http("GET", f"{base}/api/jobs?queue={queue_name}&{query}")

        assert (await jobs_of("status=failed")).json()["jobs"] == []
        assert (await jobs_of("function=JOBS:ADD")).json()["total"] == 1  # any case
        assert (await jobs_of("function=mail")).json()["total"] == 0
        assert (await jobs_of("status=done")).status == 400
        assert "unknown status" in (await jobs_of("status=done")).json()["error"]
        assert (await jobs_of("page=two")).status == 400
        by_id = await http("GET", f"{base}/search?q={job.id}")
        assert 'data-view="job"' in by_id.text and f'data-arg="{job.id}"' in by_id.text
        by_function = await http("GET", f"{base}/search?q=jobs:add")
        assert 'data-view="jobs"' in by_function.text

        detail = (await http("GET", f"{base}/api/jobs/{job.id}")).json()
        assert detail["status"] == "finished"
        assert detail["args"] == "(pickled)"  # the default serializer: never unpickled
        assert detail["result"] == "(pickled)"
        assert detail["meta"] == {"who": "test"}
        assert detail["attempts"] == 1
        assert [h["status"] for h in detail["history"]][-1] == "finished"
        assert detail["function"] == "tests.jobs:add"

        missing = await http("GET", base + "/api/jobs/no-such-job")
        assert missing.status == 404
        assert "no-such-job" in missing.json()["error"]


async def test_job_lists_show_what_is_stored_whenever_the_dashboard_started(
    client, nats_url, queue_name
):
    """Jobs that finished, failed and wait before the dashboard started are listed by state,
    a page of 50 at a time, newest change first; a restarted dashboard lists the same."""
    async with running_worker(nats_url, [queue_name]):
        done = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
        assert await done.result(timeout=20) == 2
        failed = await _failed_job(client, queue_name)
    waiting = await client.enqueue_many(
        [naq.Call(jobs.add, (i, i)) for i in range(120)], queue=queue_name
    )
    for _start in ("first", "restart"):
        async with running_dashboard(client) as base:

            async def listed(query: str = "", base: str = base) -> dict:
                return (await http("GET", f"{base}/api/jobs?queue={queue_name}&{query}")).json()

            first = await listed()
            assert first["counts"] == {"finished": 1, "failed": 1, "queued": 120}
            assert (first["total"], first["page"], first["pages"]) == (122, 1, 3)
            pages = [first, await listed("page=2"), await listed("page=3")]
            assert [len(p["jobs"]) for p in pages] == [50, 50, 22]
            ids = [j["id"] for p in pages for j in p["jobs"]]
            assert sorted(ids) == sorted([done.id, failed.id, *(j.id for j in waiting)])
            assert ids[-2:] == [failed.id, done.id]  # the oldest change is last
            assert (await listed("page=9"))["page"] == 3  # past the end: the last page
            assert [j["id"] for j in (await listed("status=finished"))["jobs"]] == [done.id]
            [shown] = (await listed("status=failed"))["jobs"]
            assert (shown["id"], shown["function"]) == (failed.id, "tests.jobs:fail")
            assert (await listed("status=queued"))["total"] == 120
            by_function = await http("GET", f"{base}/api/jobs?function=jobs:fail")
            assert failed.id in [j["id"] for j in by_function.json()["jobs"]]


async def test_json_job_shows_args_and_result(nats_url, queue_name):
    async with (
        naq.Client(nats_url, serializer="json") as client,
        running_dashboard(client) as base,
        running_worker(nats_url, [queue_name], serializer="json"),
    ):
        job = await client.enqueue("tests.jobs:add", 20, 22, queue=queue_name)
        assert await job.result(timeout=20) == 42
        detail = (await http("GET", f"{base}/api/jobs/{job.id}")).json()
    assert detail["args"] == [20, 22]
    assert detail["kwargs"] == {}
    assert detail["result"] == 42


async def test_dead_letter_requeue_and_delete_need_csrf(client, nats_url, queue_name):
    async with running_dashboard(client) as base:
        token = csrf_token((await http("GET", base + "/")).text)
        async with running_worker(nats_url, [queue_name]):
            job = await _failed_job(client, queue_name)
            detail = (await http("GET", f"{base}/api/jobs/{job.id}")).json()
            assert detail["status"] == "failed"
            assert detail["error"]["type"] == "ValueError"
            assert "kaput" in detail["error"]["traceback"]

            letters = (await http("GET", f"{base}/api/dead-letters?queue={queue_name}")).json()
            assert [d["job_id"] for d in letters] == [job.id]
            assert "ValueError: kaput" in letters[0]["reason"]
            assert "after 1 attempt(s)" in letters[0]["reason"]
            assert letters[0]["attempts"] == 1  # the runs it had, not the enqueued message's 0
            assert letters[0]["function"] == "tests.jobs:fail"
            assert datetime.fromisoformat(letters[0]["time"]).utcoffset() == timedelta(0)
            old_address = f"{base}/api/failed?queue={queue_name}"  # the API's old name
            assert (await http("GET", old_address)).json() == letters
            overview = (await http("GET", base + "/api/overview")).json()
            assert job.id in [d["job_id"] for d in overview["dead_letters"]]
            assert overview["dead_letter_count"] >= 1

            url = f"{base}/api/dead-letters/{job.id}/requeue"
            assert (await http("POST", url)).status == 403  # no token
            assert (await http("POST", url, {"X-CSRF-Token": "wrong"})).status == 403
            other_origin = {"X-CSRF-Token": token, "Origin": "http://evil.example"}
            assert (await http("POST", url, other_origin)).status == 403
            assert (await http("GET", url)).status == 405  # actions are POST only

            same_origin = {"X-CSRF-Token": token, "Origin": base}
            reply = await http("POST", url, same_origin)
            assert reply.status == 200, reply.text
            assert reply.json()["job_id"] == job.id
            with pytest.raises(naq.JobFailed):
                await job.result(timeout=20)  # fails again: the job still raises
            # The worker stores a dead letter before the record that ends the wait, so the
            # new one is there now: it is requeued again, as the first was.
            again = await http("POST", url, same_origin)
            assert again.status == 200, again.text
            with pytest.raises(naq.JobFailed):
                await job.result(timeout=20)

            [letter] = await client.dead_letters(queue=queue_name)  # the third run's, alone
            assert (letter.job_id, letter.attempts) == (job.id, 1)  # attempts start over
            doomed = letter.job_id
            delete = f"{base}/api/dead-letters/{doomed}/delete"
            assert (await http("POST", delete, {"X-CSRF-Token": token})).status == 200
            assert (await http("POST", delete, {"X-CSRF-Token": token})).status == 404
            old_delete = f"{base}/api/failed/{doomed}/delete"  # the old address still acts
            assert (await http("POST", old_delete, {"X-CSRF-Token": token})).status == 404
        assert await client.dead_letters(queue=queue_name) == []


async def _until(check, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0.05)


async def test_a_queue_no_worker_consumes_is_listed_and_a_purge_clears_it(
    client, nats_url, queue_name
):
    """A job on a queue that never had a worker (a typo) is not hidden; a purge from another
    client removes its jobs from "recent jobs" instead of leaving them shown as queued."""
    typo = f"{queue_name}-high_1"
    async with running_dashboard(client) as base:
        assert (await http("GET", base + "/api/overview")).status == 200  # tailing events
        ids = {(await client.enqueue(jobs.add, i, i, queue=typo)).id for i in range(3)}
        keep = await client.enqueue(jobs.add, 0, 0, queue=queue_name)

        async def recent() -> set[str]:
            return {j["id"] for j in (await http("GET", base + "/api/overview")).json()["recent"]}

        await _until(lambda: _has(recent(), {*ids, keep.id}))
        queues = (await http("GET", base + "/api/queues")).json()
        [listed] = [q for q in queues if q["name"] == typo]
        assert (listed["pending"], listed["workers"]) == (3, [])

        async with naq.Client(nats_url) as other:
            assert await naq.Admin(other).purge(typo) == 3
        await _until(lambda: _lacks(recent(), ids))
        assert keep.id in await recent()  # another queue's job stays


async def _has(found, wanted: set[str]) -> bool:
    return wanted <= await found


async def _lacks(found, gone: set[str]) -> bool:
    return not gone & await found


async def test_schedule_pause_resume_cancel(client, queue_name):
    schedule = await client.schedule(jobs.add, 1, 2, interval=3600, queue=queue_name)
    async with running_dashboard(client) as base:
        token = {"X-CSRF-Token": csrf_token((await http("GET", base + "/")).text)}
        listed = (await http("GET", base + "/api/schedules")).json()
        mine = next(s for s in listed if s["id"] == schedule.id)
        assert mine["status"] == "active"
        assert mine["interval"] == 3600
        assert (mine["function"], mine["one_off"]) == ("tests.jobs:add", False)

        api = f"{base}/api/schedules/{schedule.id}"
        for action, status in (("pause", "paused"), ("resume", "active"), ("cancel", "canceled")):
            assert (await http("POST", f"{api}/{action}")).status == 403
            reply = await http("POST", f"{api}/{action}", token)
            assert reply.status == 200, reply.text
            assert reply.json()["schedule"]["status"] == status
        assert (await client.fetch_schedule(schedule.id)).status == naq.ScheduleStatus.CANCELED
        assert (await http("POST", f"{base}/api/schedules/nope/pause", token)).status == 404


async def test_basic_auth(client):
    async with running_dashboard(client, auth=("admin", "s3cret")) as base:
        assert (await http("GET", base + "/api/overview")).status == 401
        wrong = base64.b64encode(b"admin:nope").decode()
        assert (await http("GET", base + "/", {"Authorization": f"Basic {wrong}"})).status == 401
        right = base64.b64encode(b"admin:s3cret").decode()
        reply = await http("GET", base + "/api/overview", {"Authorization": f"Basic {right}"})
        assert reply.status == 200


async def test_dashboard_connects_by_url(nats_url):
    async with running_dashboard(nats_url) as base:
        reply = await http("GET", base + "/api/queues")
        assert reply.status == 200
        assert isinstance(reply.json(), list)


def test_parse_auth():
    assert parse_auth(None) is None
    assert parse_auth("") is None
    assert parse_auth("u:p:q") == ("u", "p:q")
    for bad in ("nouser", ":p", "u:"):
        with pytest.raises(naq.ConfigurationError):
            parse_auth(bad)


def test_loopback_detection_for_the_auth_warning():
    from naq.cli._dashboard import bind_address, is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "example.com"))
    assert bind_address("::1", 80) == "[::1]:80"


async def test_a_jobs_uniqueness_and_limits_are_shown(client, queue_name):
    job = await client.enqueue(
        jobs.add, 1, 2, queue=queue_name, unique="queued",
        max_running=3, rate_limit="10/m", limit_key="tenant-1", priority=1,
    )  # fmt: skip
    async with running_dashboard(client) as base:
        detail = (await http("GET", f"{base}/api/jobs/{job.id}")).json()
    assert detail["unique"] == "queued"
    assert detail["unique_key"].startswith("tests.jobs:add:")
    assert (detail["max_running"], detail["rate_limit"], detail["limit_key"]) == (
        3,
        "10/m",
        "tenant-1",
    )
    assert detail["priority"] == 1
