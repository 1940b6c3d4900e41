"""Lateness of due runs with many pending schedules, per engine.

    python -m benchmarks.schedules                      # 10,000 pending, 300 probes
    python -m benchmarks.schedules --pending 1000 --probes 100

For each engine ("server": JetStream message schedules; "naq": one ``naq scheduler``
process) on a fresh embedded server: create ``--pending`` recurring schedules (every hour,
so none fires during the run), then ``--probes`` delayed jobs due at random times over the
next ``--spread`` seconds. Lateness of a probe = the time its job message was stored in
the stream (the server's timestamp) minus its due time. Nothing consumes the probes, so
the figure is the engine's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import anyio
import nats

import naq
from naq._time import as_utc, utcnow
from naq.server import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _create_pending(client: naq.Client, count: int) -> None:
    limiter = anyio.CapacityLimiter(64)

    async def one(k: int) -> None:
        async with limiter:
            await client.schedule(
                "benchmarks._jobs:noop", interval=3600, queue="bench_idle", schedule_id=f"p{k}"
            )

    async with anyio.create_task_group() as tg:
        for k in range(count):
            tg.start_soon(one, k)


async def _measure(url: str, engine: str, pending: int, probes: int, spread: float) -> dict:
    async with naq.Client(url, scheduler_engine=engine) as client:
        started = time.perf_counter()
        await _create_pending(client, pending)
        _say(f"  {engine}: {pending:,} pending schedules in {time.perf_counter() - started:.1f} s")
        rng = random.Random(1)
        base = utcnow() + timedelta(seconds=3)
        due = {}
        for _ in range(probes):
            when = base + timedelta(seconds=rng.uniform(0, spread))
            job = await client.enqueue_at(when, "benchmarks._jobs:noop", queue="bench_probe")
            due[job.id] = when
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        # Server-fired runs land on the queue's subject, the naq engine's on per-job subjects.
        await js.add_consumer(
            "NAQ_JOBS",
            durable_name="bench_probe",
            filter_subjects=["naq.jobs.bench_probe", "naq.jobs.bench_probe.*"],
            ack_policy="explicit",
        )
        sub = await js.pull_subscribe_bind("bench_probe", "NAQ_JOBS")
        lateness: dict[str, float] = {}
        deadline = time.monotonic() + spread + 60
        while len(lateness) < probes and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(256, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                job_id = (msg.headers or {}).get("Nats-Msg-Id") or json.loads(msg.data)["id"]
                if job_id in due:
                    stored = as_utc(msg.metadata.timestamp)
                    lateness[job_id] = (stored - due[job_id]).total_seconds() * 1000
                await msg.ack()
    finally:
        await nc.close()
    values = sorted(lateness.values())
    return {
        "engine": engine,
        "pending": pending,
        "probes": probes,
        "received": len(values),
        "p50_ms": statistics.median(values),
        "p99_ms": values[max(0, int(len(values) * 0.99) - 1)],
        "max_ms": values[-1],
        "min_ms": values[0],
    }


def _run_engine(engine: str, pending: int, probes: int, spread: float) -> dict:
    with EmbeddedServer() as server:
        scheduler = None
        if engine == "naq":
            scheduler = subprocess.Popen(
                [sys.executable, "-m", "naq", "scheduler", "--url", server.url,
                 "--log-level", "WARNING"],
                cwd=ROOT,
                env=os.environ.copy(),
            )  # fmt: skip
        try:
            return anyio.run(_measure, server.url, engine, pending, probes, spread)
        finally:
            if scheduler is not None:
                scheduler.terminate()
                scheduler.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--spread", type=float, default=15.0)
    parser.add_argument("--engines", default="server,naq")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = [
        _run_engine(engine, args.pending, args.probes, args.spread)
        for engine in args.engines.split(",")
    ]
    print("| engine | pending | probes | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['engine']} | {r['pending']:,} | {r['received']}/{r['probes']} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
