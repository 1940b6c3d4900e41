"""What limits cost the worker: one asyncio worker at ``concurrency=100`` drains 5,000 noop
``async def`` jobs enqueued without limits; with ``max_running=1000``, never reached (every
start takes and every end gives back a slot); with ``max_running=10``, which binds (jobs over
it wait and come back); with ``rate_limit="100000/s"``, never reached (every start is counted
in the key's one rate lock); and with ``rate_limit="500/s"``, which binds.

    python -m benchmarks.limits            # 5,000 jobs, 3 rounds
    python -m benchmarks.limits --quick    # 1,000 jobs, one round

On a fresh embedded nats-server; filling is untimed; rounds interleave the variants, each
ratio is to the unlimited drain of the same round.
"""

from __future__ import annotations

from ._naq_paths import drain_queue, fill_queue
from ._report import compare_workers

CONCURRENCY = 100
VARIANTS: dict[str, dict[str, object]] = {
    "no limit": {},
    "max_running never reached": {"max_running": 1_000},
    "max_running=10": {"max_running": 10},
    "rate_limit never reached": {"rate_limit": "100000/s"},
    "rate_limit=500/s": {"rate_limit": "500/s"},
}


async def _run(url: str, jobs: int, options: dict[str, object]) -> float:
    queue, ids = await fill_queue(url, jobs, **options)
    return await drain_queue(url, queue, ids, CONCURRENCY)


def main() -> None:
    compare_workers("The worker's cost of limits.", VARIANTS, _run, CONCURRENCY)


if __name__ == "__main__":
    main()
