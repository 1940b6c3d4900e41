"""Job functions. Workers import them by path (``shop.tasks:send_receipt``)."""

from __future__ import annotations

import anyio

import naq


def send_receipt(order_id: str) -> str:
    """A sync job: runs in a worker thread."""
    return f"receipt for order {order_id} sent"


async def resize_photo(name: str, width: int) -> str:
    """An async job: runs on the worker's event loop (asyncio or Trio)."""
    await anyio.sleep(0)
    return f"{name}@{width}px"


def charge_card(order_id: str, cents: int) -> dict[str, object]:
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents")
    return {"order": order_id, "charged": cents}


def ship(order_id: str) -> str:
    """Runs after the charge it depends on, and reads its result."""
    charges = naq.current_job().dependency_results
    total = sum(charge["charged"] for charge in charges.values())
    return f"order {order_id} shipped after charging {total} cents"
