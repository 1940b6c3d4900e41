"""Jobs run by a real worker on a real nats-server, on asyncio and on Trio."""

import pytest
from shop.tasks import charge_card, resize_photo, send_receipt, ship

import naq

pytestmark = pytest.mark.anyio


async def test_sync_job_runs(naq_client, naq_worker):
    job = await naq_client.enqueue(send_receipt, "42")
    assert await job.result(timeout=30) == "receipt for order 42 sent"


@pytest.mark.naq_worker("images", concurrency=4)
async def test_async_job_runs_on_the_tests_backend(naq_client, naq_worker):
    jobs = [await naq_client.enqueue(resize_photo, f"p{i}.png", 64, queue="images")
            for i in range(8)]  # fmt: skip
    assert [await job.result(timeout=30) for job in jobs] == [f"p{i}.png@64px" for i in range(8)]


@pytest.mark.naq_worker("payments", "shipping")
async def test_dependent_job_reads_what_it_depends_on(naq_client, naq_worker):
    charge = await naq_client.enqueue(charge_card, "7", 999, queue="payments")
    shipped = await naq_client.enqueue(ship, "7", queue="shipping", depends_on=charge)
    assert await shipped.result(timeout=30) == "order 7 shipped after charging 999 cents"


@pytest.mark.naq_worker("payments")
async def test_failed_job_is_a_dead_letter(naq_client, naq_worker):
    job = await naq_client.enqueue(charge_card, "8", 0, queue="payments")
    with pytest.raises(naq.JobFailed, match="cannot charge 0 cents"):
        await job.result(timeout=30)
    [letter] = await naq_client.dead_letters(queue="payments")  # only this test's
    assert letter.job_id == job.id


async def test_drain_runs_everything_queued_in_the_test(naq_client):
    jobs = [await naq_client.enqueue(send_receipt, str(i), queue="mail") for i in range(5)]
    assert await naq_client.drain("mail") == 5
    assert await jobs[4].result(timeout=1) == "receipt for order 4 sent"


async def test_each_test_starts_from_an_empty_server(naq_client):
    # Other tests enqueue "receipt-42" and fill "mail"; none of it is visible here.
    assert await naq_client.queue("mail").count() == 0
    job = await naq_client.enqueue(send_receipt, "42", queue="mail", job_id="receipt-42")
    assert await job.get_status() is naq.JobStatus.QUEUED
    assert await naq_client.drain("mail") == 1
