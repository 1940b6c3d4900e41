"""A Trio program: enqueue one resize per photo, collect the results as they come."""

from __future__ import annotations

import trio

import naq

from .tasks import resize_photo


async def make_thumbnails(client: naq.Client, names: list[str], width: int) -> dict[str, str]:
    results: dict[str, str] = {}

    async def one(name: str) -> None:
        job = await client.enqueue(resize_photo, name, width, queue="images")
        results[name] = await job.result(timeout=30)

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return results


async def main() -> None:
    async with naq.Client() as client:
        print(await make_thumbnails(client, ["cat.png", "dog.png"], 128))


if __name__ == "__main__":
    trio.run(main)
