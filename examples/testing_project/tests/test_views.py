"""The Django view enqueues with naq_sync; blocking tests, a worker in a thread."""

import pytest
from django.test import Client


@pytest.mark.naq_worker("mail")
def test_checkout_sends_the_receipt(naq_worker, naq_sync_client):
    response = Client().post("/checkout/", {"order_id": "42"})
    assert response.status_code == 202
    job = naq_sync_client.fetch_job(response.json()["job"])
    assert job.result(timeout=30) == "receipt for order 42 sent"


def test_checkout_twice_enqueues_once(naq_sync_client):
    for _ in range(2):
        assert Client().post("/checkout/", {"order_id": "42"}).json() == {"job": "receipt-42"}
    assert naq_sync_client.queue("mail").count() == 1
    assert naq_sync_client.drain("mail") == 1
    assert naq_sync_client.fetch_job("receipt-42").result(timeout=1) == (
        "receipt for order 42 sent"
    )
