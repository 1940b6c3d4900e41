"""An asyncio service that places orders by enqueueing jobs."""

from __future__ import annotations

import asyncio

import naq

from .tasks import charge_card, send_receipt, ship


class OrderService:
    """Places orders: charge, then ship and send a receipt, as background jobs."""

    def __init__(self, client: naq.Client) -> None:
        self.client = client

    async def place_order(self, order_id: str, cents: int) -> tuple[naq.Job, naq.Job]:
        charge = await self.client.enqueue(
            charge_card, order_id, cents, queue="payments", job_id=f"charge-{order_id}"
        )
        async with asyncio.TaskGroup() as tg:
            shipped = tg.create_task(
                self.client.enqueue(ship, order_id, queue="shipping", depends_on=charge)
            )
            receipt = tg.create_task(
                self.client.enqueue(send_receipt, order_id, queue="mail", depends_on=charge)
            )
        return shipped.result(), receipt.result()


async def main() -> None:
    async with naq.Client() as client:  # NAQ_NATS_URL, else nats://127.0.0.1:4222
        shipped, receipt = await OrderService(client).place_order("1001", 4200)
        print(await shipped.result(timeout=30), await receipt.result(timeout=30))


if __name__ == "__main__":
    asyncio.run(main())
