"""The asyncio service, tested end to end with a real worker."""

import pytest
from shop.service import OrderService


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the service uses asyncio.TaskGroup
@pytest.mark.naq_worker("payments", "shipping", "mail")
async def test_place_order(naq_client, naq_worker):
    shipped, receipt = await OrderService(naq_client).place_order("1001", 4200)
    assert await shipped.result(timeout=30) == "order 1001 shipped after charging 4200 cents"
    assert await receipt.result(timeout=30) == "receipt for order 1001 sent"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_place_order_then_drain_each_queue(naq_client):
    _shipped, receipt = await OrderService(naq_client).place_order("1002", 100)
    assert await naq_client.drain("payments") == 1  # releases the two dependents
    assert await naq_client.drain("shipping") == 1
    assert await naq_client.drain("mail") == 1
    assert await receipt.result(timeout=1) == "receipt for order 1002 sent"
